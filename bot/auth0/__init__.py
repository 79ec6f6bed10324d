"""Auth0 Management API: the transport, rate limits, hook and action endpoints, the error tree."""
