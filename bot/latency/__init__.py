"""What the bot does only to answer faster or hold less, each piece with what it buys and where
that was measured (the product works without any of them; docs/ or the README keep the runs).

- ``group_commit``: this process's write transactions share one database transaction and one
  fsync, batches of at most 16 (commit 30a65f7; a lone write 1.0 -> 0.6 ms, b3fb0db).
- ``yielding``: the outbox waits, at most 250 ms, for a moment with no Slack request in flight,
  so a delivery does not share the GIL with an ack (364e0c8; ``benchmarks.ack_latency``).
- ``frozen_startup``: ``gc.freeze`` of what startup built, so full collections stop pausing
  requests: view-submission p99 at 10 clients 84-98 -> 37-54 ms (dad9e77,
  ``benchmarks.ack_latency``).
- ``slack_pool``: Slack Web API calls over kept-alive connections instead of a connection and
  TLS handshake each: per ``views.open`` over HTTPS on loopback 5.2 -> 2.1 ms wall and
  2.2 -> 0.7 ms CPU (39cbc8e; ``python -m benchmarks.slack_transport``, rerun for issue 21).
- ``deadlines``: one thread that cuts off sockets whose request did not arrive in time, so a
  trickling client can't hold a worker thread (ad7b15e; a bound, not a speed-up).

Outside this package: ``bot.serve.master``, the gunicorn master ``run`` execs into, never
imports the app and holds 27 MiB instead of 85 (d2606df; ``benchmarks.memory``).
"""
