"""The domain: pure types and rules, with no aiohttp, SQLAlchemy or I/O."""
