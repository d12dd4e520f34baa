"""The use cases: the only place where GitHub and the store meet."""
