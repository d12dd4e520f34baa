"""The search page: ``GET /`` and the fixed paths under ``/-/``, mounted by
``routes.setup_pages``; templates/ and static/ ship as package data."""
