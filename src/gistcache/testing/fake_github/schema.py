"""GitHub's published GraphQL schema, pinned: the fake's ``/graphql`` checks every query
against it, so a query the real GitHub would refuse fails in the tests too.

The schema is npm's ``@octokit/graphql-schema`` (GitHub's SDL, republished as it
changes) at ``VERSION``. ``make install`` runs ``python -m
gistcache.testing.fake_github.schema``, which downloads that version's tarball from the
npm registry, checks it against ``INTEGRITY`` (the registry's ``dist.integrity``, a
SHA-512 of the tarball) and writes its ``schema.graphql`` to ``.venv/share/gistcache/``
(in ``.venv``, so never committed). Nothing is downloaded when the fake runs: without the
file the fake's ``/graphql`` answers 500 and says to run ``make install``.

To move the pin: ``npm view @octokit/graphql-schema@X version dist.integrity``, set both
constants, ``make install``, run tests/fake.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import io
import sys
import tarfile
import threading
import urllib.request
from pathlib import Path

import graphql

PACKAGE = "@octokit/graphql-schema"
VERSION = "15.26.1"
INTEGRITY = (
    "sha512-"
    "RFDC2MpRBd4AxSRvUeBIVeBU7ojN/SxDfALUd7iVYOSeEK3gZaqR2MGOysj4Zh2xj2RY5fQAUT+Oqq7hWTraMA=="
)
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/graphql-schema-{VERSION}.tgz"
MEMBER = "package/schema.graphql"


def schema_path(prefix: Path | None = None) -> Path:
    """Where ``make install`` puts the pinned schema (the version is in the name, so a
    moved pin is never read from an older file)."""
    root = Path(sys.prefix) if prefix is None else prefix
    return root / "share" / "gistcache" / f"github-graphql-schema-{VERSION}.graphql"


class SchemaMissing(RuntimeError):
    pass


_building = threading.Lock()


def github_schema() -> graphql.GraphQLSchema:
    """The pinned schema, built once per process (about 1.5 s; a thread may build it
    ahead, as the command line does, and a request meanwhile waits for that build)."""
    with _building:
        return _build()


@functools.cache
def _build() -> graphql.GraphQLSchema:
    """The schema itself.

    Built with ``assume_valid``: GitHub's SDL defines two fields of
    ``EnterpriseOwnerInfo`` twice (identically) and marks some interface fields
    deprecated on the implementation only, which graphql-core's stricter schema checks
    refuse and GitHub's own server serves. Queries are still validated against it.
    """
    path = schema_path()
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemaMissing(
            f"GitHub's GraphQL schema is not installed at {path}: run `make install`"
        ) from None
    document = graphql.parse(source, no_location=True)
    return graphql.build_ast_schema(document, assume_valid=True, assume_valid_sdl=True)


def install(prefix: Path | None = None, *, tarball: bytes | None = None) -> Path:
    """Download the pinned tarball (unless given), check its integrity and write its
    schema where the fake reads it; an existing file of the pinned version is kept."""
    target = schema_path(prefix)
    if target.exists() and tarball is None:
        return target
    if tarball is None:
        # a fixed https URL of the npm registry (ruff's S310 sees the constant)
        with urllib.request.urlopen(TARBALL, timeout=60) as answer:
            tarball = answer.read()
    algorithm, _, expected = INTEGRITY.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, tarball).digest()).decode("ascii")
    if actual != expected:
        raise SystemExit(
            f"{PACKAGE}@{VERSION}: the tarball's {algorithm} is {actual}, "
            f"the pinned integrity says {expected}: nothing written"
        )
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile(MEMBER)
        if member is None:
            raise SystemExit(f"{PACKAGE}@{VERSION} has no {MEMBER}")
        text = member.read()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(text)
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m gistcache.testing.fake_github.schema",
        description=f"Install GitHub's GraphQL schema ({PACKAGE}@{VERSION}) for the fake.",
    )
    parser.add_argument("--prefix", type=Path, default=None, help="default: this Python's")
    args = parser.parse_args(argv)
    path = install(args.prefix)
    print(f"{PACKAGE}@{VERSION}: {path}")


if __name__ == "__main__":
    main()
