"""GitHub's own REST API for public gists, served from the cache under ``/api/v3``."""
