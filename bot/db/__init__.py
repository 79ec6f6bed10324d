"""Persistence: engine, tables, queries, group commit, the audit chain, values at rest,
migrations."""
