"""Logging set-up: readable lines for people, or JSON lines for log shippers.

While the web app runs, :func:`queued` moves the formatting and writing of every
line off the event loop: the loop only appends each record to a queue
(``logging.handlers.QueueHandler``; an access line as its bare values, not even a
``LogRecord``), and a listener thread takes what waits every 10 ms, formats it and
writes it in one write per output. The access log, one line a request, costs the
loop about a microsecond and no thread switch. (Every 50 ms, the batches of a busy
server held the interpreter long enough to double the p99 of cached lists.)

Why not the standard library's ``QueueHandler`` and ``QueueListener`` as they come:
profiled on a cached list at concurrency 64, they cost the loop 19% of its samples
(each line woke the listener, a GIL hand-off a request) against 2.6% for this
(docs/performance.md, "Access log (cached list at c=64)" and "Access log, again").
Benchmark scenario 1 (``benchmarks/scenarios.py``, ``make bench``) serves that list
with the log at INFO and off: the day the stock pair, swapped in, costs no more there,
it should replace this module's queue and thread.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import queue
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from logging.handlers import QueueHandler
from types import TracebackType
from typing import Any

LISTEN_EVERY = 0.01  # seconds between the listener's looks at the queue

# the listener while :func:`queued` runs: :func:`drain` writes out what it holds
_listening: list[_Listener] = []

# arguments that cannot change between the call and the listener's formatting
_IMMUTABLE = (str, int, float, bool, type(None))


# what would end, rewrite or break a line of the text log: C0 and C1 control characters
# (a newline, a carriage return, a terminal's escape sequences), DEL, Unicode's line and
# paragraph separators, and lone surrogates (no UTF-8 stream can write one)
_UNSAFE_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def one_line(text: str) -> str:
    """``text`` with every character that could end or rewrite a log line escaped as
    Python writes it in a string literal (a newline as ``\\n``)."""
    return _UNSAFE_IN_LINE.sub(_escape, text) if _UNSAFE_IN_LINE.search(text) else text


def _escape(found: re.Match[str]) -> str:
    char = found.group()
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


class TextFormatter(logging.Formatter):
    """Lines for people: time, level, logger, message. A record is one line (its
    traceback, if any, follows it): values from outside, such as a file name GitHub sent
    or an error's text, are escaped (``one_line``), so that no value can start a line
    that reads as a record of its own. (JSON lines escape them already.)"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # the traceback as this formatter writes it, not as another one left it cached
        cached, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = cached

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record))

    def formatException(self, ei: _ExcInfo) -> str:
        """The traceback as Python prints it, but each exception's own text (which may
        hold a value from outside) escaped to one line; frames are the server's code."""
        if ei[1] is None:
            return super().formatException(ei)
        formatted = traceback.TracebackException(ei[0], ei[1], ei[2])
        text = "".join(formatted.format())
        for message in sorted(_exception_texts(formatted), key=len, reverse=True):
            text = text.replace(message, one_line(message.removesuffix("\n")) + "\n")
        return text.removesuffix("\n")


def _exception_texts(formatted: traceback.TracebackException) -> set[str]:
    """What ``format_exception_only`` gives for each exception of a traceback: the one
    raised, its cause or context, and an exception group's members."""
    texts, waiting = set(), [formatted]
    while waiting:
        exc = waiting.pop()
        text = "".join(exc.format_exception_only())
        if _UNSAFE_IN_LINE.search(text.removesuffix("\n")):
            texts.add(text)
        waiting += [e for e in (exc.__cause__, exc.__context__) if e is not None]
        waiting += getattr(exc, "exceptions", None) or []
    return texts


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
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # alembic announces every plugin it loads at INFO; that is noise in a service log
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


class _Batches:
    """The queue between the loop and the listener: ``put_nowait`` is a deque's append
    (no lock, no waking a thread per line, which would cost the loop a GIL hand-off each
    time); the listener takes every line waiting every ``interval`` seconds."""

    def __init__(self) -> None:
        self._lines: collections.deque[Any] = collections.deque()

    def put_nowait(self, item: Any) -> None:
        self._lines.append(item)

    def get(self) -> Any:
        """One line (what ``QueueHandler`` types its queue by; the listener uses ``take``)."""
        try:
            return self._lines.popleft()
        except IndexError:
            raise queue.Empty from None

    def take(self) -> list[Any]:
        taken = []
        try:
            while True:
                taken.append(self._lines.popleft())
        except IndexError:
            return taken


class _Access:
    """An access line as the loop leaves it: when, and the values; the listener makes
    the ``LogRecord`` (its constructor was a third of the loop's cost of a line)."""

    __slots__ = ("_record", "args", "created", "fields", "logger", "msg")

    def __init__(self, logger: logging.Logger, msg: str, args: tuple[Any, ...], fields: Any):
        self.created = time.time()
        self.logger = logger
        self.msg = msg
        self.args = args
        self.fields = fields
        self._record: logging.LogRecord | None = None

    def record(self) -> logging.LogRecord:
        if self._record is not None:  # one record for every output that needs it
            return self._record
        record = self._record = self.logger.makeRecord(
            self.logger.name, logging.INFO, __file__, 0, self.msg, self.args, None,
            extra={"fields": self.fields},
        )  # fmt: skip
        record.created = self.created
        record.msecs = int((self.created - int(self.created)) * 1000) + 0.0
        return record


class _Listener:
    """The thread that formats and writes what the loop queued: every ``interval``
    seconds it takes every waiting line, formats each for each output, and writes them
    in one write per output (one syscall and flush for a batch, not for each line)."""

    def __init__(self, pending: _Batches, outputs: list[logging.Handler], interval: float) -> None:
        self._pending = pending
        self._outputs = outputs
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gistcache-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write every line queued so far, then end the thread."""
        self._stopping.set()
        self._thread.join()
        self._write(self._pending.take())  # what came after the thread's last look

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self._write_safely()
        self._write_safely()

    def _write_safely(self) -> None:
        try:
            self._write(self._pending.take())
        except Exception as exc:  # a broken handler must not end the thread
            sys.stderr.write(f"gistcache: log lines lost: {exc!r}\n")

    def _write(self, items: list[Any]) -> None:
        if not items:
            return
        for handler in self._outputs:
            stream = getattr(handler, "stream", None)
            quick = _quick_access_line(handler) if stream is not None else None
            wanted, lines = [], []
            for item in items:
                if quick is not None and isinstance(item, _Access):
                    with contextlib.suppress(Exception):  # else the record's way reports it
                        lines.append(quick(item))
                        continue
                record = _record_of(item)
                # as Handler.handle decides, less its lock per line: level, then filters
                if record is None or record.levelno < handler.level or not handler.filter(record):
                    continue
                wanted.append(record)
                if stream is not None:
                    try:
                        lines.append(handler.format(record))
                    except Exception:
                        handler.handleError(record)
            if stream is None:  # not a stream: one record at a time, as logging does
                for record in wanted:
                    handler.handle(record)
            elif lines:
                _write_lines(handler, stream, lines, wanted)


def _record_of(item: Any) -> logging.LogRecord | None:
    try:
        return item.record() if isinstance(item, _Access) else item
    except Exception:  # a line that cannot be made must not end the thread
        sys.stderr.write("gistcache: an access line could not be logged\n")
        return None


def _write_lines(
    handler: logging.Handler, stream: Any, lines: list[str], records: list[logging.LogRecord]
) -> None:
    handler.acquire()
    try:
        stream.write("\n".join(lines) + "\n")
        handler.flush()
    except Exception:
        handler.handleError(records[-1] if records else logging.makeLogRecord({}))
    finally:
        handler.release()


def _quick_access_line(handler: logging.Handler) -> Callable[[_Access], str] | None:
    """How to write an access line for ``handler`` straight from its values, as its
    formatter would write its record: for the two formats of :func:`configure_logging`,
    when no filter may look at the record. Making the ``LogRecord`` and formatting it
    was most of the listener's time, which it spends holding the interpreter the event
    loop needs (docs/performance.md, the cached list)."""
    if handler.filters or handler.level > logging.INFO:
        return None
    if type(handler.formatter) is TextFormatter:
        return _text_access_line
    if type(handler.formatter) is JsonFormatter:
        return _json_access_line
    return None


@functools.lru_cache(maxsize=4)
def _local_second(second: int) -> str:
    return time.strftime(logging.Formatter.default_time_format, time.localtime(second))


def _text_access_line(access: _Access) -> str:
    """``TextFormatter().format(access.record())``, without the record."""
    second = int(access.created)
    msecs = int((access.created - second) * 1000)
    message = access.msg % access.args
    level = logging.getLevelName(logging.INFO)
    return one_line(f"{_local_second(second)},{msecs:03d} {level} {access.logger.name}: {message}")


def _json_access_line(access: _Access) -> str:
    """``JsonFormatter().format(access.record())``, without the record."""
    entry: dict[str, Any] = {
        "time": datetime.fromtimestamp(access.created, UTC).isoformat(timespec="milliseconds"),
        "level": logging.getLevelName(logging.INFO),
        "logger": access.logger.name,
        "message": access.msg % access.args,
    }
    if isinstance(access.fields, dict):
        entry.update(access.fields)
    return json.dumps(entry, ensure_ascii=False, default=str)


# where the loop leaves access lines while :func:`queued` runs (None: log them as usual)
_access_queue: list[_Batches] = []


def _only_the_queue(logger: logging.Logger) -> bool:
    """Whether a line of ``logger`` reaches nothing but the queue: no filter or handler
    on the way to the root, and the queue the root's only handler."""
    node: Any = logger
    while node is not None and not isinstance(node, logging.RootLogger):
        if node.filters or node.handlers or not node.propagate:
            return False
        node = node.parent
    return node is not None and len(node.handlers) == 1 and isinstance(node.handlers[0], _HandOff)


def log_access(logger: logging.Logger, msg: str, args: tuple[Any, ...], fields: Any) -> None:
    """Log an access line at INFO (the caller has checked that INFO is on): queued as
    plain values while :func:`queued` runs and the logger has no handler of its own,
    else as ``Logger.info`` would, less the lookup of the caller's frame."""
    if _access_queue and _only_the_queue(logger):
        _access_queue[-1].put_nowait(_Access(logger, msg, args, fields))
        return
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 0, msg, args, None, extra={"fields": fields}
    )
    logger.handle(record)


@contextlib.contextmanager
def queued() -> Iterator[_Listener | None]:
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
    listener = _Listener(pending, list(outputs), interval=LISTEN_EVERY)
    for handler in outputs:
        root.removeHandler(handler)
    root.addHandler(hand_off)
    listener.start()
    _listening.append(listener)
    _access_queue.append(pending)
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
    _access_queue.clear()  # access lines from now on are logged as usual
    while _listening:
        listener = _listening.pop()
        listener.stop()  # writes every line queued before it, then returns
