"""Log lines are formatted and written by a listener thread while the app runs
(observability.logs.queued), and still read as before."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from gistcache.observability import logs


@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure_logging("INFO")
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


class _Recorder(logging.Formatter):
    """Formats as the text format does, and notes the thread that did it."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.threads: list[str] = []

    def format(self, record: logging.LogRecord) -> str:
        self.threads.append(threading.current_thread().name)
        return super().format(record)


def test_lines_are_formatted_off_the_calling_thread_and_all_written(
    output: io.StringIO,
) -> None:
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, logs._Output)]
    recorder = _Recorder()
    handler.setFormatter(recorder)
    log = logging.getLogger("gistcache.test")
    with logs.queued() as listener:
        assert listener is not None
        for n in range(200):
            log.info("line %d of %s", n, "200")
    # every line written, in order, by the time queued() is left
    lines = output.getvalue().splitlines()
    assert lines == [f"INFO gistcache.test: line {n} of 200" for n in range(200)]
    assert recorder.threads
    assert threading.current_thread().name not in recorder.threads
    handlers = logging.getLogger().handlers
    assert handler in handlers  # put back
    assert not any(isinstance(h, logs._HandOff) for h in handlers)


def test_mutable_arguments_are_merged_when_logged(output: io.StringIO) -> None:
    log = logging.getLogger("gistcache.test")
    items = ["a"]
    with logs.queued():
        log.warning("items %s", items)
        items.append("changed later")
    assert len(output.getvalue().splitlines()) == 1
    assert output.getvalue().rstrip().endswith("items ['a']")


def test_exceptions_keep_their_traceback(output: io.StringIO) -> None:
    log = logging.getLogger("gistcache.test")
    with logs.queued():
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    text = output.getvalue()
    assert "failed" in text
    assert "ValueError: boom" in text


def test_text_lines_escape_control_characters_in_what_they_log(output: io.StringIO) -> None:
    log = logging.getLogger("gistcache.test")
    forged = "2030-01-01 00:00:00,000 ERROR gistcache.web: forged"
    with logs.queued():
        log.warning("could not fetch %s: %s", f"a.txt\n{forged}", "\x1b[2J\u2028\ud800")
        try:
            try:
                raise KeyError("cause")
            except KeyError as exc:
                raise ValueError(f"file 'b\r\n{forged}'") from exc
        except ValueError:
            log.exception("failed on %s", "c\nd")
    lines = output.getvalue().splitlines()
    assert not [line for line in lines if line.startswith("2030-")]
    assert lines[0].endswith(f"could not fetch a.txt\\n{forged}: \\x1b[2J\\u2028\\ud800")
    assert lines[1].endswith("failed on c\\nd")
    assert f"ValueError: file 'b\\r\\n{forged}'" in lines
    assert "The above exception was the direct cause of the following exception:" in lines
    assert "KeyError: 'cause'" in lines


def test_without_configured_output_nothing_changes() -> None:
    root = logging.getLogger()
    before = root.handlers[:]
    root.handlers[:] = [h for h in before if not isinstance(h, logs._Output)]
    try:
        with logs.queued() as listener:
            assert listener is None
            assert not any(isinstance(h, logs._HandOff) for h in root.handlers)
    finally:
        root.handlers[:] = before


def test_access_lines_are_queued_as_values_and_written_as_records_would_be(
    output: io.StringIO,
) -> None:
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, logs._Output)]
    handler.setFormatter(logs.JsonFormatter())
    access = logging.getLogger("gistcache.access")
    fields = {"status": 200, "route": "/{username}"}
    root = logging.getLogger()
    with logs.queued():
        others = [h for h in root.handlers if not isinstance(h, logs._HandOff)]
        # another handler (pytest's own here) must see the line: then it is a record
        logs.log_access(access, "GET %s status=%d", ("/first", 200), fields)
        queued = logs._access_queue[-1].take()
        assert [type(item).__name__ for item in queued] == ["LogRecord"] * bool(others)
        for other in others:
            root.removeHandler(other)
        try:
            logs.log_access(access, "GET %s status=%d", ("/octocat", 200), fields)
            queued = logs._access_queue[-1].take()
            assert [type(item).__name__ for item in queued] == ["_Access"]  # no record yet
            for item in queued:
                logs._access_queue[-1].put_nowait(item)
            logging.getLogger("gistcache.test").info("after")
        finally:
            for other in others:
                root.addHandler(other)
    first, second = (json.loads(line) for line in output.getvalue().splitlines())
    assert first["message"] == "GET /octocat status=200"
    assert (first["logger"], first["level"], first["status"]) == ("gistcache.access", "INFO", 200)
    assert second["message"] == "after"
    assert first["time"] <= second["time"]
    # outside queued(): an ordinary record, through the logger's handlers
    logs.log_access(access, "GET %s status=%d", ("/again", 404), fields)
    assert json.loads(output.getvalue().splitlines()[-1])["message"] == "GET /again status=404"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_access_lines_written_from_their_values_read_as_their_records(
    output: io.StringIO, fmt: str
) -> None:
    logs.configure_logging("INFO", fmt)
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, logs._Output)]
    access = logs._Access(
        logging.getLogger("gistcache.access"),
        "GET %s status=%d duration_ms=%.1f cache=%s",
        ("/odd\nname", 200, 0.25, "-"),
        {"status": 200, "path": "/odd\nname", "cache": None},
    )
    quick = logs._quick_access_line(handler)
    assert quick is not None
    assert quick(access) == handler.format(access.record())
    handler.addFilter(lambda record: True)  # a filter must see a record
    assert logs._quick_access_line(handler) is None


def test_an_outputs_level_and_filters_hold_for_queued_lines(output: io.StringIO) -> None:
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h, logs._Output)]
    handler.setLevel(logging.WARNING)
    handler.addFilter(lambda record: "secret" not in record.getMessage())
    log = logging.getLogger("gistcache.test")
    with logs.queued():
        log.info("below the output's level")
        log.warning("kept")
        log.warning("a secret line")
    assert [line.split(": ", 1)[1] for line in output.getvalue().splitlines()] == ["kept"]
