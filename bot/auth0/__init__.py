"""Auth0 Management API: the client and its error tree."""
