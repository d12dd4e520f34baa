"""Helpers the tests share: processes, databases, HTTP, a clock,
waiting and GitHub's REST description.

Test modules and conftest.py import from here, never from each other."""
