"""Hypothesis profiles for the property tests: "ci" (chosen when CI=true) runs the same
examples every time, a bounded number of them, and prints the blob that reproduces a
failure; "dev" (otherwise) draws new examples each run and remembers failing ones in
.hypothesis/. HYPOTHESIS_PROFILE names one explicitly ("thorough": many more examples)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.support.database import CI

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=100,
    deadline=None,
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None, print_blob=True)
# a longer hunt, by hand: HYPOTHESIS_PROFILE=thorough make test PYTEST_ARGS=tests/property
settings.register_profile("thorough", max_examples=5000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if CI else "dev"))
