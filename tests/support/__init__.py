"""Helpers the tests share: processes, databases, HTTP, a clock and waiting.

Test modules and conftest.py import from here, never from each other."""
