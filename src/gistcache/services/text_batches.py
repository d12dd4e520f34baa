"""Use case: files' texts in GraphQL batches, for the content fetcher. Which of a
search's missing files a batch can give (``TextBatches.plan``: their gists' node ids
from the list items, the batches from ``github.graphql``'s planner), each batch asked
for once, behind GraphQL's own rate-limit gate shared with the other servers, and its
texts handed to the files' flights (``BatchRun``). A batch that fails gives nothing:
its files are downloaded from their raw URLs by their flights, as without GraphQL."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence

from gistcache.domain.gists import Gist
from gistcache.github.errors import GitHubError
from gistcache.github.gate import BlockExchange
from gistcache.github.graphql import Batch, GistAsked, gist_node_id, plan_batches
from gistcache.github.graphql_transport import GraphQLTransport
from gistcache.store.contents import FileRef

log = logging.getLogger(__name__)

Texts = dict[tuple[str, str], str]  # by (gist id, file name)


class BatchRun:
    """One GraphQL batch, asked for once the first of its files' flights waits for it,
    its texts handed to each of them; given up when every flight waiting for it did."""

    def __init__(self, ask: Callable[[], Awaitable[Texts]]) -> None:
        self._ask = ask
        self._task: asyncio.Task[Texts] | None = None
        self._waiting = 0

    async def text(self, ref: FileRef) -> str | None:
        """The file's text, when the batch gave it whole; None: download it."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._ask())
        task = self._task
        self._waiting += 1
        try:
            texts = await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                if self._waiting == 1 and not task.done():
                    task.cancel()  # the last flight waiting for it gave up
                raise
            return None  # given up by the others before this flight waited: download
        finally:
            self._waiting -= 1
        return texts.get((ref.gist_id, ref.filename))


class TextBatches:
    """The GraphQL batches of ``graphql`` (None: no token, or turned off), its gate's
    block shared through ``block``."""

    def __init__(self, graphql: GraphQLTransport | None, block: BlockExchange | None) -> None:
        self._graphql = graphql
        self._block = block

    def plan(self, refs: Sequence[FileRef], gists: Sequence[Gist]) -> dict[FileRef, BatchRun]:
        """The batch each of ``refs`` is to come in, for the files of ``gists`` (the list
        they are of, in its order) that a batch can give: none without GraphQL, nor for
        a gist the list item names no node id of, or whose file list GitHub cut."""
        if self._graphql is None:
            return {}
        wanted: dict[str, list[FileRef]] = {}
        for ref in refs:
            wanted.setdefault(ref.gist_id, []).append(ref)
        asked = []
        for gist in gists:
            files = wanted.get(gist.id)
            node = gist_node_id(gist.raw) if files else None
            if files is None or node is None or gist.truncated:
                continue
            revision = files[0].updated_at  # what the texts will be keyed on
            if any(ref.updated_at != revision for ref in files):
                continue
            listed = tuple((f.filename, f.size) for f in gist.files)
            asked.append(GistAsked(node, gist.id, revision, listed))
        runs: dict[FileRef, BatchRun] = {}
        for batch in plan_batches(asked).batches:
            run = BatchRun(functools.partial(self._ask, batch))
            for one in batch.gists:
                runs.update((ref, run) for ref in wanted[one.gist_id])
        return runs

    async def _ask(self, batch: Batch) -> Texts:
        """The texts ``batch`` gives, behind GraphQL's gate shared with the other
        servers; none when it fails (its files then come from their raw URLs)."""
        graphql = self._graphql
        assert graphql is not None  # noqa: S101 - batches are planned only with it
        try:
            if self._block is None:
                answer = await graphql.texts(batch)
            else:
                async with graphql.gate.shared(self._block):
                    answer = await graphql.texts(batch)
        except GitHubError as exc:
            log.info("a GraphQL batch of %d files failed (%s): raw downloads", batch.files, exc)
            return {}
        except Exception:
            log.exception("a GraphQL batch of %d files failed: raw downloads", batch.files)
            return {}
        if answer.moved or answer.lacking:
            log.debug(
                "a GraphQL batch left %d files to raw downloads (%d gists changed meanwhile)",
                answer.lacking,
                answer.moved,
            )
        return answer.texts
