"""Repository functions for cached file contents, keyed on the gist's updated_at or the
file's raw URL (which names the content's revision)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    String,
    Text,
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.store.errors import FileLeftList
from gistcache.store.models import file_chunks, file_contents, gist_files, gists, users
from gistcache.store.sql import in_chunks, is_postgres, upsert

TEXT = "text"
BINARY = "binary"
TOO_LARGE = "too_large"

BATCH_BYTES = 4 * 1024 * 1024  # chunk data read from the database at once
BATCH_ROWS = 400


@dataclass(frozen=True, slots=True)
class FileRef:
    site: int
    gist_id: str
    filename: str
    updated_at: datetime  # the gist's, which the contents will be keyed on
    raw_url: str | None
    size: int | None


@dataclass(frozen=True, slots=True)
class StoredChunk:
    gist_id: str
    filename: str
    first_line: int
    data: bytes | None  # None when the chunk vanished under a newer fetch mid-scan


@dataclass(frozen=True, slots=True)
class FileState:
    """A listed file of the user's and what is cached of its contents (if anything)."""

    site: int
    gist_id: str
    filename: str
    status: str | None  # text, binary or too_large; None: nothing current is cached
    generation: str | None  # the fetch whose chunks are current
    stored_bytes: int  # bytes received, when cached
    chunks: int
    # the revision the cached contents were fetched for: the gist's updated_at then, and
    # the file's raw URL (None when nothing is cached); ``current_for`` says whether
    # they are current for a listed revision, by the rule the store reads them by
    updated_at: datetime | None = None
    raw_url: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.gist_id, self.filename)

    def current_for(self, updated_at: datetime, raw_url: str | None) -> bool:
        """Whether these contents are current for a file listed with ``raw_url`` in a
        gist updated at ``updated_at`` (``_current_contents``, in Python)."""
        if self.updated_at is None:
            return False
        return self.updated_at == updated_at or (
            self.raw_url is not None and self.raw_url == raw_url
        )


def _current_contents() -> Any:
    """Contents fetched for the gist's current updated_at, or from the file's current raw
    URL (a gist edited elsewhere leaves the file's URL, and its contents, alone)."""
    return and_(
        file_contents.c.site_id == gist_files.c.site_id,
        file_contents.c.gist_id == gist_files.c.gist_id,
        file_contents.c.filename == gist_files.c.filename,
        or_(
            file_contents.c.updated_at == gists.c.updated_at,
            file_contents.c.raw_url == gist_files.c.raw_url,
        ),
    )


def _listed_files() -> Any:
    return (gists.c.site_id == gist_files.c.site_id) & (gists.c.id == gist_files.c.gist_id)


def _user_files(site: int, login: str, gist_id: str | None, *columns: Any) -> Select[Any]:
    """``columns`` of the user's listed files (of ``gist_id`` only, when given), each
    joined with its current contents if it has any, in list order."""
    stmt = (
        select(*columns)
        .select_from(gist_files)
        .join(gists, _listed_files())
        .outerjoin(file_contents, _current_contents())
        .where(gists.c.site_id == site, gists.c.owner_login == login, gists.c.public.is_(True))
        .order_by(gists.c.position, gist_files.c.position)
    )
    return stmt if gist_id is None else stmt.where(gists.c.id == gist_id)


async def lock_file(session: AsyncSession, ref: FileRef) -> bool:
    """Lock the file's row for this transaction (PostgreSQL; SQLite has one writer anyway).

    False when the file is no longer listed.
    """
    stmt = select(gist_files.c.gist_id).where(
        gist_files.c.site_id == ref.site,
        gist_files.c.gist_id == ref.gist_id,
        gist_files.c.filename == ref.filename,
    )
    if is_postgres(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first() is not None


async def add_chunk(
    session: AsyncSession,
    ref: FileRef,
    generation: str,
    chunk_no: int,
    first_line: int,
    data: bytes,
) -> None:
    """Store one chunk of a fetch; it becomes visible only with ``install_contents``.

    Raises FileLeftList when the file is no longer listed.
    """
    async with _still_listed():
        await session.execute(
            file_chunks.insert().values(
                site_id=ref.site,
                gist_id=ref.gist_id,
                filename=ref.filename,
                generation=generation,
                chunk_no=chunk_no,
                first_line=first_line,
                size=len(data),
                data=data,
            )
        )


@contextlib.asynccontextmanager
async def _still_listed() -> AsyncIterator[None]:
    """A row of a file that left the list breaks its foreign key: say so in the store's
    own words."""
    try:
        yield
    except IntegrityError as exc:
        raise FileLeftList("the file is no longer listed") from exc


async def install_contents(
    session: AsyncSession,
    ref: FileRef,
    generation: str,
    *,
    status: str,
    size: int,
    chunks: int,
    now: datetime,
    chunk_bytes: int | None = None,
) -> None:
    """Make ``generation`` the file's contents for ``ref.updated_at`` and ``ref.raw_url``,
    and drop any other.

    Call with the file locked (``lock_file``): the last fetch to finish wins whole.
    ``chunk_bytes`` is what the chunks of a text file hold. Raises FileLeftList when the
    file is no longer listed.
    """
    of_file = (
        file_chunks.c.site_id == ref.site,
        file_chunks.c.gist_id == ref.gist_id,
        file_chunks.c.filename == ref.filename,
    )
    # a fetch that found the file binary or too large part-way drops what it wrote too
    keeping = (file_chunks.c.generation != generation,) if status == TEXT else ()
    await session.execute(delete(file_chunks).where(*of_file, *keeping))
    async with _still_listed():
        await upsert(
            session,
            file_contents,
            [
                {
                    "site_id": ref.site,
                    "gist_id": ref.gist_id,
                    "filename": ref.filename,
                    "updated_at": ref.updated_at,
                    "raw_url": ref.raw_url,
                    "status": status,
                    "size": size,
                    "chunks": chunks,
                    "generation": generation,
                    "fetched_at": now,
                    "chunk_bytes": chunk_bytes if status == TEXT else 0,
                }
            ],
            ["site_id", "gist_id", "filename"],
        )


@dataclass(frozen=True, slots=True)
class NewContents:
    """A fetch to install as its file's contents (``install_files``): what
    ``install_contents`` takes, with the fetch's last chunk when it is written at the
    install (``last_chunk``: its number, first line and data)."""

    ref: FileRef
    generation: str
    status: str
    size: int
    chunks: int
    now: datetime
    chunk_bytes: int = 0
    last_chunk: tuple[int, int, bytes] | None = None


async def install_files(session: AsyncSession, files: Sequence[NewContents]) -> list[bool]:
    """Install every fetch of ``files`` as ``install_contents`` does one, together, in
    four statements whatever their number (a file's lock, chunk, clean-up and state
    each cost a round trip when made one file at a time). Whether each was installed:
    False for a file no longer listed, whose fetch is left alone.

    On PostgreSQL the files are locked first, in key order (the files' (site, gist id,
    file name), names compared by code point), as ``evict_contents`` locks them: two
    transactions installing or evicting overlapping files cannot deadlock. Two fetches
    of one file in ``files``: the later one wins. Raises FileLeftList when a file leaves
    the list meanwhile (SQLite, which locks no rows)."""
    if not files:
        return []
    keys = sorted({(f.ref.site, f.ref.gist_id, f.ref.filename) for f in files})
    of_files = tuple_(gist_files.c.site_id, gist_files.c.gist_id, gist_files.c.filename)
    stmt = select(gist_files.c.site_id, gist_files.c.gist_id, gist_files.c.filename).where(
        of_files.in_(keys)
    )
    if is_postgres(session):
        stmt = stmt.order_by(
            gist_files.c.site_id,
            gist_files.c.gist_id.collate("C"),
            gist_files.c.filename.collate("C"),
        ).with_for_update()
    listed = {(r.site_id, r.gist_id, r.filename) for r in await session.execute(stmt)}
    installed = [(f.ref.site, f.ref.gist_id, f.ref.filename) in listed for f in files]
    latest = {
        (f.ref.site, f.ref.gist_id, f.ref.filename): f
        for f, ok in zip(files, installed, strict=True)
        if ok
    }
    if not latest:
        return installed
    going = list(latest.values())
    chunks = [
        {
            "site_id": f.ref.site,
            "gist_id": f.ref.gist_id,
            "filename": f.ref.filename,
            "generation": f.generation,
            "chunk_no": f.last_chunk[0],
            "first_line": f.last_chunk[1],
            "size": len(f.last_chunk[2]),
            "data": f.last_chunk[2],
        }
        for f in files
        if f.last_chunk is not None and (f.ref.site, f.ref.gist_id, f.ref.filename) in listed
    ]
    async with _still_listed():
        if chunks:
            await session.execute(file_chunks.insert(), chunks)
        # every other fetch's chunks of these files go; a fetch that found its file
        # binary or too large part-way drops what it wrote too (generations are unique
        # to one fetch of one file)
        kept = sorted(f.generation for f in going if f.status == TEXT)
        await session.execute(
            delete(file_chunks).where(
                tuple_(file_chunks.c.site_id, file_chunks.c.gist_id, file_chunks.c.filename).in_(
                    sorted(latest)
                ),
                *((file_chunks.c.generation.not_in(kept),) if kept else ()),
            )
        )
        await upsert(
            session,
            file_contents,
            [
                {
                    "site_id": f.ref.site,
                    "gist_id": f.ref.gist_id,
                    "filename": f.ref.filename,
                    "updated_at": f.ref.updated_at,
                    "raw_url": f.ref.raw_url,
                    "status": f.status,
                    "size": f.size,
                    "chunks": f.chunks,
                    "generation": f.generation,
                    "fetched_at": f.now,
                    "chunk_bytes": f.chunk_bytes if f.status == TEXT else 0,
                }
                for f in going
            ],
            ["site_id", "gist_id", "filename"],
        )
    return installed


async def discard_fetch(session: AsyncSession, ref: FileRef, generation: str) -> None:
    """Drop the chunks a fetch wrote before it failed or was given up (it was never
    installed, so nothing reads them)."""
    await session.execute(
        delete(file_chunks).where(
            file_chunks.c.site_id == ref.site,
            file_chunks.c.gist_id == ref.gist_id,
            file_chunks.c.filename == ref.filename,
            file_chunks.c.generation == generation,
        )
    )


# --- the budget of cached contents ------------------------------------------------


def _held_bytes() -> Any:
    """What a file's cached contents take: its chunks' bytes (text rows cached before
    these were counted hold about the bytes received); a binary or too large file's, the
    head kept of it for ``GET /gists/{id}`` (``install_head``), if any."""
    return case(
        (
            file_contents.c.status == TEXT,
            func.coalesce(file_contents.c.chunk_bytes, file_contents.c.size),
        ),
        else_=func.coalesce(file_contents.c.chunk_bytes, 0),
    )


def _of_user(site: int, login: str) -> Any:
    return (file_contents.c.site_id == site) & file_contents.c.gist_id.in_(
        select(gists.c.id).where(gists.c.site_id == site, gists.c.owner_login == login)
    )


@dataclass(frozen=True, slots=True)
class UserContents:
    site: int
    login: str
    searched_at: datetime | None  # None: never searched since it was recorded
    bytes: int


async def content_usage(session: AsyncSession) -> list[UserContents]:
    """Every user (of every site) whose contents are cached (text, or the heads of other
    files), with the bytes they take, the least recently searched first (never searched
    first of all)."""
    held = func.sum(_held_bytes()).label("held")
    result = await session.execute(
        select(gists.c.site_id, gists.c.owner_login, users.c.searched_at, held)
        .select_from(file_contents)
        .join(
            gists,
            (gists.c.site_id == file_contents.c.site_id) & (gists.c.id == file_contents.c.gist_id),
        )
        .join(
            users,
            (users.c.site_id == gists.c.site_id) & (users.c.login == gists.c.owner_login),
        )
        .where(or_(file_contents.c.status == TEXT, file_contents.c.chunk_bytes > 0))
        .group_by(gists.c.site_id, gists.c.owner_login, users.c.searched_at)
        .order_by(
            users.c.searched_at.is_not(None),
            users.c.searched_at,
            gists.c.site_id,
            gists.c.owner_login,
        )
    )
    return [UserContents(r.site_id, r.owner_login, r.searched_at, int(r.held or 0)) for r in result]


@dataclass(frozen=True, slots=True)
class Evicted:
    site: int
    gist_id: str
    filename: str
    generation: str


class Contents:
    """The cached contents of one site's users over one session (``db.contents``); the
    statements not bound to a site (fetches, installs, reads of chunks) are the module's
    functions."""

    __slots__ = ("session", "site")

    def __init__(self, session: AsyncSession, site: int) -> None:
        self.session = session
        self.site = site

    async def user_files(
        self,
        login: str,
        gist_ids: Sequence[str] | None = None,
        *,
        gist_id: str | None = None,
    ) -> list[FileState]:
        """The user's listed files in list order (those of ``gist_ids``, or of ``gist_id``,
        only, if given), each with the state of its current contents, in one statement."""
        stmt = _user_files(
            self.site,
            login,
            gist_id,
            gist_files.c.gist_id,
            gist_files.c.filename,
            file_contents.c.status,
            file_contents.c.generation,
            file_contents.c.size.label("stored_bytes"),
            file_contents.c.chunks,
            file_contents.c.updated_at.label("fetched_for"),
            file_contents.c.raw_url.label("fetched_from"),
        )
        if gist_ids is not None:
            stmt = stmt.where(gists.c.id.in_(sorted(set(gist_ids))))
        result = await self.session.execute(stmt)
        return [
            FileState(
                self.site,
                r.gist_id,
                r.filename,
                r.status,
                r.generation,
                r.stored_bytes or 0,
                r.chunks or 0,
                r.fetched_for,
                r.fetched_from,
            )
            for r in result
        ]

    async def files_without_contents(
        self, login: str, *, gist_id: str | None = None
    ) -> list[FileRef]:
        """The user's files (of ``gist_id`` only, when given) with no current contents cached."""
        stmt = _user_files(
            self.site,
            login,
            gist_id,
            gist_files.c.gist_id,
            gist_files.c.filename,
            gists.c.updated_at,
            gist_files.c.raw_url,
            gist_files.c.size,
        )
        result = await self.session.execute(stmt.where(file_contents.c.gist_id.is_(None)))
        return [
            FileRef(self.site, r.gist_id, r.filename, r.updated_at, r.raw_url, r.size)
            for r in result
        ]

    async def user_content_bytes(self, login: str) -> int:
        """The bytes the user's cached contents take (text, and heads of other files)."""
        total = await self.session.scalar(
            select(func.sum(_held_bytes())).where(_of_user(self.site, login))
        )
        return int(total or 0)

    async def evict_contents(self, login: str) -> list[Evicted]:
        """Drop every cached content of the user's files (its list stays), in the caller's
        transaction; return the revisions dropped.

        Safe beside installs and readers: on PostgreSQL the user's files are locked first,
        in the order installs lock them (so neither waits for the other in a circle); a
        row is dropped with the chunks of the fetch it names, so a file is either cached
        whole or not at all, and chunks a fetch under way writes (not yet installed) are
        left to it. A reader that read a file's state before this commits finds its
        chunks gone, as when a newer fetch replaced them.
        """
        if is_postgres(self.session):
            await self.session.execute(
                select(gist_files.c.gist_id)
                .where(
                    gist_files.c.site_id == self.site,
                    gist_files.c.gist_id.in_(
                        select(gists.c.id).where(
                            gists.c.site_id == self.site, gists.c.owner_login == login
                        )
                    ),
                )
                # installs lock files in Python's order of their names: code points, as "C"
                .order_by(gist_files.c.gist_id.collate("C"), gist_files.c.filename.collate("C"))
                .with_for_update()
            )
        dropped = await self.session.execute(
            delete(file_contents)
            .where(_of_user(self.site, login))
            .returning(
                file_contents.c.gist_id, file_contents.c.filename, file_contents.c.generation
            )
        )
        evicted = [Evicted(self.site, r.gist_id, r.filename, r.generation) for r in dropped]
        for part in in_chunks(evicted):
            await self.session.execute(
                delete(file_chunks).where(
                    file_chunks.c.site_id == self.site,
                    file_chunks.c.gist_id.in_(sorted({e.gist_id for e in part})),
                    file_chunks.c.generation.in_(sorted({e.generation for e in part})),
                )
            )
        return evicted

    async def record_search(self, login: str, now: datetime, step: timedelta) -> None:
        """Note that a search read the user's contents now, unless one was noted less than
        ``step`` ago (a warm search then writes nothing)."""
        await self.session.execute(
            update(users)
            .where(
                users.c.site_id == self.site,
                users.c.login == login,
                (users.c.searched_at.is_(None)) | (users.c.searched_at < now - step),
            )
            .values(searched_at=now)
        )


async def stream_text_chunks(
    session: AsyncSession, files: Sequence[FileState]
) -> AsyncGenerator[StoredChunk, None]:
    """Every chunk of the text files among ``files``, in their order, a few MiB at a time.

    Batches are of bounded size (drivers' server-side cursors prefetch dozens of rows,
    which for 1 MiB chunks would not be bounded): whole files, read by gist id (the
    primary key's prefix) and fetch generation, or a run of one large file's chunks.
    The next batch is read while the caller works through the current one, so at most
    two are held at once.
    """
    batches = await _plan(session, files)
    pending = asyncio.ensure_future(_read(session, *batches[0])) if batches else None
    try:
        for number in range(len(batches)):
            assert pending is not None  # noqa: S101 - set for every batch; for mypy
            chunks = await pending
            pending = None
            if number + 1 < len(batches):
                pending = asyncio.ensure_future(_read(session, *batches[number + 1]))
                await asyncio.sleep(0)  # let it send its query before the caller's work
            for chunk in chunks:
                yield chunk
            del chunks
    finally:
        if pending is not None:
            # let the read ahead finish (one batch at most) rather than cancel it: a
            # statement cut off mid-way leaves the session's connection unusable
            with contextlib.suppress(Exception):  # its failure is not the caller's news
                await pending


_DATA_COLUMNS = (
    file_chunks.c.gist_id,
    file_chunks.c.filename,
    file_chunks.c.generation,
    file_chunks.c.chunk_no,
    file_chunks.c.first_line,
    file_chunks.c.data,
)

_VARCHARS = ARRAY(String)
_TEXTS = ARRAY(Text)

Batch = tuple[Any, list[tuple["FileState", int]]]  # a statement, and the chunks it reads


async def _plan(session: AsyncSession, files: Sequence[FileState]) -> list[Batch]:
    batches: list[Batch] = []
    group: list[FileState] = []
    group_bytes = group_chunks = 0

    postgres = is_postgres(session)

    def close_group() -> None:
        nonlocal group, group_bytes, group_chunks
        if group:
            batches.append(_whole_files(group, postgres))
        group, group_bytes, group_chunks = [], 0, 0

    for state in files:
        if state.status != TEXT or state.generation is None or not state.chunks:
            continue
        if state.stored_bytes > BATCH_BYTES or state.chunks > BATCH_ROWS:
            close_group()
            batches.extend(await _large_file(session, state))
            continue
        if (
            group_bytes + state.stored_bytes > BATCH_BYTES
            or group_chunks + state.chunks > BATCH_ROWS
            or (group and group[0].site != state.site)
        ):
            close_group()
        group.append(state)
        group_bytes += state.stored_bytes
        group_chunks += state.chunks
    close_group()
    return batches


def _whole_files(files: list[FileState], postgres: bool) -> Batch:
    """Every chunk of ``files`` (of one site each: a batch never mixes sites).

    PostgreSQL is handed each file's whole key as three arrays (one parameter each, so
    the statement is compiled once, not once per list of values) and looks each file's
    chunks up by its key, in a lateral subquery: a plan of one primary-key lookup per
    file whatever the statistics say. As ``key IN (unnest ...)``, without statistics (a
    fresh table, autovacuum off) a custom plan, knowing the arrays' length, hashed the
    keys and scanned every chunk of the site in every batch (the cost of a batch grew
    with all that the site had cached), and a generic plan, assuming ten keys, looked
    them up: a warm search's speed depended on which plan the connection had cached.
    SQLite walks the key by the site and each gist id; generations are unique to one
    fetch of one file, so they pick exactly these files' chunks among their gists'.
    """
    site = files[0].site
    if postgres:
        keys = (
            func.unnest(
                literal([f.gist_id for f in files], _VARCHARS),
                literal([f.filename for f in files], _TEXTS),
                literal([f.generation for f in files], _VARCHARS),
            )
            .table_valued("gist_id", "filename", "generation")
            .render_derived()
        )
        # ordered by chunk, the subquery is kept apart (not merged into a join the
        # planner could hash), so it runs once per key, by the primary key
        chunks = (
            select(*_DATA_COLUMNS)
            .where(
                file_chunks.c.site_id == site,
                file_chunks.c.gist_id == keys.c.gist_id,
                file_chunks.c.filename == keys.c.filename,
                file_chunks.c.generation == keys.c.generation,
            )
            .order_by(file_chunks.c.chunk_no)
            .lateral("chunks")
        )
        stmt: Any = select(*chunks.c).select_from(keys).join(chunks, true())
    else:
        stmt = select(*_DATA_COLUMNS).where(
            file_chunks.c.site_id == site,
            file_chunks.c.gist_id.in_(sorted({f.gist_id for f in files})),
            file_chunks.c.generation.in_(sorted({f.generation for f in files if f.generation})),
        )
    return stmt, [(f, n) for f in files for n in range(f.chunks)]


async def _large_file(session: AsyncSession, state: FileState) -> list[Batch]:
    """One file's chunks in primary-key ranges of about BATCH_BYTES each."""
    of_file = and_(
        file_chunks.c.site_id == state.site,
        file_chunks.c.gist_id == state.gist_id,
        file_chunks.c.filename == state.filename,
        file_chunks.c.generation == state.generation,
    )
    sizes = await session.execute(select(file_chunks.c.chunk_no, file_chunks.c.size).where(of_file))
    size_of = {row.chunk_no: row.size for row in sizes}
    batches: list[Batch] = []
    start = 0
    while start < state.chunks:
        end, size = start, 0
        while end < state.chunks and (end == start or size + size_of.get(end, 0) <= BATCH_BYTES):
            size += size_of.get(end, 0)
            end += 1
        stmt = select(*_DATA_COLUMNS).where(of_file, file_chunks.c.chunk_no.between(start, end - 1))
        batches.append((stmt, [(state, n) for n in range(start, end)]))
        start = end
    return batches


async def _read(
    session: AsyncSession, stmt: Any, wanted: list[tuple[FileState, int]]
) -> list[StoredChunk]:
    result = await session.execute(stmt)
    rows = {(r.gist_id, r.filename, r.generation, r.chunk_no): r for r in result}
    del result
    chunks = []
    for state, number in wanted:
        row = rows.pop((state.gist_id, state.filename, state.generation, number), None)
        # None: a newer fetch replaced this generation since the states were read
        chunks.append(
            StoredChunk(
                state.gist_id,
                state.filename,
                0 if row is None else row.first_line,
                None if row is None else bytes(row.data),
            )
        )
    return chunks


# --- the head of a binary or too large file ------------------------------------------


async def install_head(session: AsyncSession, state: FileState, data: bytes) -> bool:
    """Keep ``data``, the first bytes of a file cached as binary or too large (what
    ``GET /gists/{id}`` gives of it), as chunk 0 of its current fetch, counted in its
    ``chunk_bytes``. False when its contents changed meanwhile (or a head is kept
    already); FileLeftList when it left the list."""
    changed = await session.execute(
        update(file_contents)
        .where(
            file_contents.c.site_id == state.site,
            file_contents.c.gist_id == state.gist_id,
            file_contents.c.filename == state.filename,
            file_contents.c.generation == state.generation,
            file_contents.c.status != TEXT,
            file_contents.c.chunks == 0,
        )
        .values(chunks=1, chunk_bytes=len(data))
    )
    if getattr(changed, "rowcount", 0) != 1:
        return False
    async with _still_listed():
        await session.execute(
            file_chunks.insert().values(
                site_id=state.site,
                gist_id=state.gist_id,
                filename=state.filename,
                generation=state.generation,
                chunk_no=0,
                first_line=1,
                size=len(data),
                data=data,
            )
        )
    return True


async def read_head(session: AsyncSession, state: FileState) -> bytes | None:
    """The head kept of a binary or too large file (``install_head``), or None when
    there is none (or its fetch was replaced meanwhile)."""
    data = await session.scalar(
        select(file_chunks.c.data).where(
            file_chunks.c.site_id == state.site,
            file_chunks.c.gist_id == state.gist_id,
            file_chunks.c.filename == state.filename,
            file_chunks.c.generation == state.generation,
            file_chunks.c.chunk_no == 0,
        )
    )
    return None if data is None else bytes(data)
