"""One vocabulary of failures: every kind has its HTTP status, the OpenAPI document
describes each status a kind can have, and every exception that declares a kind has a
title to go with it."""

from __future__ import annotations

import gistcache.domain.errors
import gistcache.github.errors
import gistcache.store.errors
import gistcache.web.failures
from gistcache.domain.errors import FailureKind, InvalidLogin, InvalidParameter, kind_of
from gistcache.services.failures import describe
from gistcache.web.api.openapi import PROBLEMS
from gistcache.web.failures import STATUS

MODULES = (
    gistcache.domain.errors,
    gistcache.github.errors,
    gistcache.store.errors,
    gistcache.web.failures,
)


def _failures() -> list[type[BaseException]]:
    return [
        value
        for module in MODULES
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and isinstance(getattr(value, "kind", None), FailureKind)
    ]


def test_every_kind_has_a_status() -> None:
    assert set(STATUS) == set(FailureKind)
    assert all(400 <= status <= 599 for status in STATUS.values())


def test_the_openapi_document_describes_every_status_a_failure_can_have() -> None:
    statuses = {str(status) for status in STATUS.values()}
    # 405 is any path's answer to a method it does not take (the document lists each
    # path's methods instead); 409, a job's result asked for too early, is described on
    # that operation alone
    assert set(PROBLEMS) | {"405", "409"} == statuses


def test_every_failure_class_has_a_title() -> None:
    classes = _failures()
    assert len(classes) >= 20
    untitled = [cls.__name__ for cls in classes if not getattr(cls, "title", "")]
    assert not untitled


def test_a_kind_is_the_classs_and_so_are_the_words() -> None:
    login = describe(InvalidLogin("user", "no such login", given_as="parameter"))
    assert login is not None
    assert (login.kind, login.title, login.members) == (
        FailureKind.INVALID_USERNAME,
        "Invalid username",
        {"parameter": "user"},
    )
    paging = describe(InvalidParameter("per_page", "per_page must be an integer from 1 to 100"))
    assert paging is not None
    assert (paging.kind, paging.title, paging.members) == (
        FailureKind.INVALID_QUERY,
        "Invalid per_page",
        {"parameter": "per_page"},
    )
    assert kind_of(ValueError("a bug")) is None
    assert describe(ValueError("a bug")) is None
