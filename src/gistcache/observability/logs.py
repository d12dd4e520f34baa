"""Logging set-up: readable lines for people, or JSON lines for log shippers.

While the web app runs, :func:`queued` moves the formatting and writing of every
line off the event loop: the loop only appends each record to a queue
(``logging.handlers.QueueHandler``), and a ``QueueListener`` thread takes what
waits every 50 ms, formats and writes it. The access log, one line a request,
costs the loop about a microsecond and no thread switch.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import queue
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any

# the listener while :func:`queued` runs: :func:`drain` writes out what it holds
_listening: list[QueueListener] = []

# arguments that cannot change between the call and the listener's formatting
_IMMUTABLE = (str, int, float, bool, type(None))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; an access line carries its fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _Output(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs: the one :func:`queued` puts behind a queue."""


class _HandOff(QueueHandler):
    """Hands records to the listener unformatted: the formatting is the listener's.

    The stock ``prepare`` formats the message on the caller's thread (the event loop);
    here only a record whose arguments could still change (a mutable object) has its
    message merged now. Exceptions stay on the record for the listener's formatter.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        args = record.args
        if args and not (isinstance(args, tuple) and all(isinstance(a, _IMMUTABLE) for a in args)):
            record.msg = record.getMessage()
            record.args = None
        return record


def configure_logging(level: str, fmt: str = "text") -> None:
    handler = _Output(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # alembic announces every plugin it loads at INFO; that is noise in a service log
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class _Batches:
    """The queue between the loop and the listener: ``put_nowait`` is a deque's append
    (no lock, no waking a thread per line, which would cost the loop a GIL hand-off each
    time); the listener's ``get`` polls every ``interval`` seconds and then takes every
    line waiting. A line waits at most ``interval`` before it is written."""

    def __init__(self, interval: float = 0.05) -> None:
        self._lines: collections.deque[Any] = collections.deque()
        self._interval = interval

    def put_nowait(self, item: Any) -> None:
        self._lines.append(item)

    def get(self, block: bool = True) -> Any:
        while True:
            try:
                return self._lines.popleft()
            except IndexError:
                if not block:
                    raise queue.Empty from None
                time.sleep(self._interval)


@contextlib.contextmanager
def queued() -> Iterator[QueueListener | None]:
    """While inside, the output handler of :func:`configure_logging` is fed through a
    queue by a listener thread; on the way out the listener writes what is left and
    the handler is put back. Without that handler (tests, embedding) nothing changes."""
    root = logging.getLogger()
    outputs = [h for h in root.handlers if isinstance(h, _Output)]
    if not outputs:
        yield None
        return
    pending = _Batches()
    hand_off = _HandOff(pending)  # a queue in all that is asked of one
    listener = QueueListener(pending, *outputs, respect_handler_level=True)
    for handler in outputs:
        root.removeHandler(handler)
    root.addHandler(hand_off)
    listener.start()
    _listening.append(listener)
    try:
        yield listener
    finally:
        drain()
        root.removeHandler(hand_off)
        for handler in outputs:
            root.addHandler(handler)


def drain() -> None:
    """Write every line queued so far, and stop the listener: before ``os._exit``, and
    on the way out of :func:`queued`. Lines logged afterwards wait in the queue."""
    while _listening:
        listener = _listening.pop()
        listener.stop()  # handles every record queued before it, then returns
