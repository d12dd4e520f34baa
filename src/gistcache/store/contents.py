"""Repository functions for cached file contents, keyed on the gist's updated_at."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gistcache.store.models import file_chunks, file_contents, gist_files, gists
from gistcache.store.queries import is_postgres, upsert

TEXT = "text"
BINARY = "binary"
TOO_LARGE = "too_large"

BATCH_BYTES = 4 * 1024 * 1024  # chunk data read from the database at once
BATCH_ROWS = 400


@dataclass(frozen=True, slots=True)
class FileRef:
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


async def files_without_contents(session: AsyncSession, login: str) -> list[FileRef]:
    """The user's files with no contents cached for their gist's current updated_at."""
    result = await session.execute(
        select(
            gist_files.c.gist_id,
            gist_files.c.filename,
            gists.c.updated_at,
            gist_files.c.raw_url,
            gist_files.c.size,
        )
        .join(gists, gists.c.id == gist_files.c.gist_id)
        .outerjoin(
            file_contents,
            and_(
                file_contents.c.gist_id == gist_files.c.gist_id,
                file_contents.c.filename == gist_files.c.filename,
                file_contents.c.updated_at == gists.c.updated_at,
            ),
        )
        .where(gists.c.owner_login == login, file_contents.c.gist_id.is_(None))
        .order_by(gists.c.position, gist_files.c.position)
    )
    return [FileRef(r.gist_id, r.filename, r.updated_at, r.raw_url, r.size) for r in result]


async def content_states(session: AsyncSession, login: str) -> dict[tuple[str, str], str]:
    """Status (text, binary, too_large) of each file whose contents are current."""
    result = await session.execute(
        select(file_contents.c.gist_id, file_contents.c.filename, file_contents.c.status)
        .join(gists, gists.c.id == file_contents.c.gist_id)
        .where(gists.c.owner_login == login, file_contents.c.updated_at == gists.c.updated_at)
    )
    return {(r.gist_id, r.filename): r.status for r in result}


async def lock_file(session: AsyncSession, gist_id: str, filename: str) -> bool:
    """Lock the file's row for this transaction (PostgreSQL; SQLite has one writer anyway).

    False when the file is no longer listed.
    """
    stmt = select(gist_files.c.gist_id).where(
        gist_files.c.gist_id == gist_id, gist_files.c.filename == filename
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
    """Store one chunk of a fetch; it becomes visible only with ``install_contents``."""
    await session.execute(
        file_chunks.insert().values(
            gist_id=ref.gist_id,
            filename=ref.filename,
            generation=generation,
            chunk_no=chunk_no,
            first_line=first_line,
            size=len(data),
            data=data,
        )
    )


async def install_contents(
    session: AsyncSession,
    ref: FileRef,
    generation: str,
    *,
    status: str,
    size: int,
    chunks: int,
    now: datetime,
) -> None:
    """Make ``generation`` the file's contents for ``ref.updated_at`` and drop any other.

    Call with the file locked (``lock_file``): the last fetch to finish wins whole.
    """
    await session.execute(
        delete(file_chunks).where(
            file_chunks.c.gist_id == ref.gist_id,
            file_chunks.c.filename == ref.filename,
            file_chunks.c.generation != generation,
        )
    )
    await upsert(
        session,
        file_contents,
        [
            {
                "gist_id": ref.gist_id,
                "filename": ref.filename,
                "updated_at": ref.updated_at,
                "status": status,
                "size": size,
                "chunks": chunks,
                "generation": generation,
                "fetched_at": now,
            }
        ],
        ["gist_id", "filename"],
    )


async def stream_text_chunks(session: AsyncSession, login: str) -> AsyncIterator[StoredChunk]:
    """Every current text chunk of the user's files, in list order, a few MiB at a time.

    Keys come first, then the data in batches of bounded size: drivers' server-side
    cursors prefetch dozens of rows, which for 1 MiB chunks would not be bounded.
    """
    keys = (
        await session.execute(
            select(
                file_chunks.c.gist_id,
                file_chunks.c.filename,
                file_chunks.c.generation,
                file_chunks.c.chunk_no,
                file_chunks.c.first_line,
                file_chunks.c.size,
            )
            .join(gists, gists.c.id == file_chunks.c.gist_id)
            .join(
                gist_files,
                and_(
                    gist_files.c.gist_id == file_chunks.c.gist_id,
                    gist_files.c.filename == file_chunks.c.filename,
                ),
            )
            .join(
                file_contents,
                and_(
                    file_contents.c.gist_id == file_chunks.c.gist_id,
                    file_contents.c.filename == file_chunks.c.filename,
                    file_contents.c.generation == file_chunks.c.generation,
                ),
            )
            .where(
                gists.c.owner_login == login,
                file_contents.c.updated_at == gists.c.updated_at,
                file_contents.c.status == TEXT,
            )
            .order_by(gists.c.position, gist_files.c.position, file_chunks.c.chunk_no)
        )
    ).all()
    # a batch is whole files, read by gist id and fetch generation (an index lookup),
    # or a run of one large file's chunks; either holds about BATCH_BYTES at most
    batch: list[Any] = []
    batch_bytes = 0
    for _, grouped in itertools.groupby(keys, key=lambda k: (k.gist_id, k.filename)):
        file_keys = list(grouped)
        file_bytes = sum(k.size for k in file_keys)
        if file_bytes > BATCH_BYTES or len(file_keys) > BATCH_ROWS:
            if batch:
                async for chunk in _load_files(session, batch):
                    yield chunk
                batch, batch_bytes = [], 0
            async for chunk in _load_large_file(session, file_keys):
                yield chunk
            continue
        if batch and (
            batch_bytes + file_bytes > BATCH_BYTES or len(batch) + len(file_keys) > BATCH_ROWS
        ):
            async for chunk in _load_files(session, batch):
                yield chunk
            batch, batch_bytes = [], 0
        batch.extend(file_keys)
        batch_bytes += file_bytes
    if batch:
        async for chunk in _load_files(session, batch):
            yield chunk


_DATA_COLUMNS = (
    file_chunks.c.gist_id,
    file_chunks.c.filename,
    file_chunks.c.generation,
    file_chunks.c.chunk_no,
    file_chunks.c.data,
)


async def _load_files(session: AsyncSession, keys: list[Any]) -> AsyncIterator[StoredChunk]:
    """Every chunk of the files in ``keys``: generations are unique to one fetch of one
    file, so gist ids (the primary key's prefix) and generations pick exactly these."""
    stmt = select(*_DATA_COLUMNS).where(
        file_chunks.c.gist_id.in_(sorted({k.gist_id for k in keys})),
        file_chunks.c.generation.in_(sorted({k.generation for k in keys})),
    )
    async for chunk in _in_order(session, stmt, keys):
        yield chunk


async def _load_large_file(session: AsyncSession, keys: list[Any]) -> AsyncIterator[StoredChunk]:
    """One file's chunks, a primary-key range of about BATCH_BYTES at a time."""
    first = keys[0]
    start = 0
    while start < len(keys):
        end, size = start, 0
        while end < len(keys) and (end == start or size + keys[end].size <= BATCH_BYTES):
            size += keys[end].size
            end += 1
        stmt = select(*_DATA_COLUMNS).where(
            file_chunks.c.gist_id == first.gist_id,
            file_chunks.c.filename == first.filename,
            file_chunks.c.generation == first.generation,
            file_chunks.c.chunk_no.between(keys[start].chunk_no, keys[end - 1].chunk_no),
        )
        async for chunk in _in_order(session, stmt, keys[start:end]):
            yield chunk
        start = end


async def _in_order(
    session: AsyncSession, stmt: Any, keys: list[Any]
) -> AsyncIterator[StoredChunk]:
    result = await session.execute(stmt)
    data = {(r.gist_id, r.filename, r.generation, r.chunk_no): r.data for r in result}
    del result
    for key in keys:
        chunk = data.pop((key.gist_id, key.filename, key.generation, key.chunk_no), None)
        # None: a newer fetch replaced this generation since the keys were read
        yield StoredChunk(
            key.gist_id, key.filename, key.first_line, None if chunk is None else bytes(chunk)
        )
