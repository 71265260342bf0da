"""GitHub: the connection, a small REST client and the interpretation of CI results."""
