"""Reading a few top-level fields of a JSON object as its bytes stream past
(``github.skim``): the owner of a gist whose contents come first."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gistcache.github.skim import OWNER_FIELDS, FieldSkimmer, SkimError, gist_owner, owner_known

DOCUMENTS: list[dict[str, Any]] = [
    {
        "url": "u",
        "files": {"a.txt": {"content": 'he said "hi" \\ \\" x\n' * 50, "size": 3}},
        "public": True,
        "user": None,
        "owner": {"login": "bob", "id": 3},
        "history": [1, 2],
    },
    {"public": False, "owner": {"login": "x"}},
    {"a": [1, {"b": "}"}], "public": True, "n": -1.5e3, "owner": None, "user": {"login": "old"}},
    {'\\"k': "\\\\", "public": True, "é": "ü"},
    {},
]


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("indent", [None, 2])
def test_the_wanted_fields_are_read_however_the_bytes_are_cut(
    document: dict[str, Any], size: int, indent: int | None
) -> None:
    raw = json.dumps(document, indent=indent, ensure_ascii=indent is None).encode()
    skimmer = FieldSkimmer(OWNER_FIELDS)
    for start in range(0, len(raw), size):
        if skimmer.feed(raw[start : start + size]):
            break
    assert skimmer.done
    assert skimmer.fields == {k: v for k, v in document.items() if k in OWNER_FIELDS}


def test_reading_stops_once_the_owner_is_known() -> None:
    head = b'{"public": true, "user": null, "owner": {"login": "ada"}, "files": {"a": '
    skimmer = FieldSkimmer(OWNER_FIELDS)
    assert skimmer.feed(head) is True  # the unread rest is never needed
    assert gist_owner(skimmer.fields) == "ada"
    secret = FieldSkimmer(OWNER_FIELDS)
    secret.feed(b'{"files": {}, "public": false, "created_at": ')
    assert owner_known(secret)
    assert gist_owner(secret.fields) is None


def test_a_long_value_is_skipped_without_being_kept() -> None:
    content = 'x\n"y\\\\' * 200_000
    raw = json.dumps({"files": {"big": {"content": content}}, "public": True}).encode()
    skimmer = FieldSkimmer(OWNER_FIELDS, value_limit=100)
    for start in range(0, len(raw), 65536):
        skimmer.feed(raw[start : start + 65536])
    assert skimmer.ended
    assert skimmer.fields == {"public": True}


@pytest.mark.parametrize(
    "raw",
    [
        b"[1, 2]",
        b'{"public" 1}',
        b'{"owner": {"login": "' + b"a" * 200 + b'"}}',
        b'{"public": tru}',
    ],
)
def test_what_is_no_object_or_too_large_is_an_error(raw: bytes) -> None:
    with pytest.raises(SkimError):
        FieldSkimmer(OWNER_FIELDS, value_limit=100).feed(raw)


def test_the_owner_is_that_of_a_public_gist_only() -> None:
    assert gist_owner({"public": True, "owner": {"login": "ada"}}) == "ada"
    assert gist_owner({"public": True, "owner": None, "user": {"login": "old"}}) == "old"
    assert gist_owner({"public": "true", "owner": {"login": "ada"}}) is None
    assert gist_owner({"public": True, "owner": {"login": "x" * 40}}) is None
    assert gist_owner({"public": True, "owner": {"login": "a\ud800"}}) is None
