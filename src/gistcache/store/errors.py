"""The store's own failures: what leaves the store instead of SQLAlchemy's exceptions.
An outage is told to clients (its kind, ``domain.errors.FailureKind``); the others are
bugs."""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import exc as sa_exc

from gistcache.domain.errors import FailureKind


class StoreError(Exception):
    """The cache database could not do what was asked (the cause is chained)."""


class StoreUnavailable(StoreError):
    """The database is lost or unreachable, as opposed to a bug in a statement."""

    kind: ClassVar[FailureKind] = FailureKind.DATABASE_UNAVAILABLE
    title: ClassVar[str] = "Database unavailable"


class FileLeftList(StoreError):
    """The file is no longer listed: its gist changed or went while it was downloading."""


# SQLSTATEs of a server that is going, gone or not there yet rather than of a bad
# statement: connection exceptions (08...), operator intervention (57P01 admin
# shutdown, 57P02 crash shutdown, 57P03 "the database system is starting up / shutting
# down", 57P04 database dropped), too many connections, and a server that takes no
# writes (25006: a standby after a fail-over, default_transaction_read_only). asyncpg
# raises some of them as classes that SQLAlchemy maps to no subclass of DBAPIError.
OUTAGE_SQLSTATES = ("08", "57P", "53300", "25006")


def is_outage(exc: BaseException) -> bool:
    """A lost or unreachable database: a dropped or refused connection, an exhausted
    pool, an unresolvable host, a connect timeout, a server shutting down, starting or
    taking no writes."""
    if isinstance(exc, sa_exc.DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        return (
            isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
            or exc.connection_invalidated
            or (isinstance(sqlstate, str) and sqlstate.startswith(OUTAGE_SQLSTATES))
        )
    return isinstance(exc, sa_exc.TimeoutError | OSError | TimeoutError)


def translate(exc: BaseException) -> StoreError | None:
    """The store's error for what went wrong in a session, or None for what is not the
    database's (it passes unchanged)."""
    if isinstance(exc, StoreError):
        return None
    if is_outage(exc):
        return StoreUnavailable(f"the cache database is not answering ({type(exc).__name__})")
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return StoreError(f"a cache database statement failed ({type(exc).__name__})")
    return None
