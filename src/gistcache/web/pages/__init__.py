"""The search page (issue 11): ``GET /`` and the fixed paths under ``/-/``, mounted by
``routes.setup_pages``; templates/ and static/ ship as package data."""
