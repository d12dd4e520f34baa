"""Reading GitHub's answers, with no I/O: a whole API answer at once (``read_answer``:
its JSON, the pages its ``Link`` header names, or the GitHubError it means), gist items
into domain Gists (secret ones dropped), rate-limit headers and the wait they ask for,
error bodies, and the request target a raw URL is sent as."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn
from urllib.parse import urlsplit

from multidict import MultiMapping
from yarl import URL

from gistcache.domain.gists import GIST_ID, Gist, GistFile, parse_timestamp, storable_text
from gistcache.github.errors import (
    GitHubError,
    GitHubNotFound,
    GitHubRateLimited,
    GitHubUnavailable,
)

DEFAULT_RETRY_AFTER = 60
# GitHub's windows are an hour: a longer wait is a broken or hostile answer, and would
# shut every server out of GitHub (the block is shared through the database)
MAX_RATE_LIMIT_WAIT = 60 * 60
# what may not stand as it is in a request target's path or query (RFC 3986: pchar,
# "/" and "?" may), and a "%" that does not begin a %XX escape
_UNSAFE_IN_TARGET = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]|%(?![0-9A-Fa-f]{2})")
# RFC 8288: link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param ), comma-separated.
# Read here rather than by aiohttp's ClientResponse.links, which needs the live response
# (read_answer reads headers alone), keys a link by its whole rel as written (so that
# rel="prev next" or rel=NEXT is no "next") and raises ValueError on a target that is no URL
_LINK_VALUE = re.compile(r"\s*<([^>]*)>([^,]*(?:,(?!\s*<)[^,]*)*)")
_LINK_PARAM = re.compile(r'\s*([^\s=;,]+)\s*=\s*(?:"([^"]*)"|([^\s";,]*))')


@dataclass(frozen=True, slots=True)
class Answer:
    """A 200 or a 304 from GitHub's API, as ``read_answer`` read it."""

    status: int
    etag: str | None
    body: Any  # the JSON of a 200; None for a 304
    next: URL | None  # the Link header's rel="next" on the API's origin (next_page)
    last: URL | None = None  # its rel="last", likewise; only a hint for asking ahead

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class RateLimitedAnswer(GitHubRateLimited):
    """An answer that refused a request for GitHub's rate limit, with what the gate
    needs to block: ``retry_after`` as the answer named it (or the default), whether it
    ``named`` a wait at all, and whether the primary budget is ``spent`` (rather than a
    secondary limit hit). The client raises a GitHubRateLimited with the gate's wait."""

    def __init__(self, message: str, retry_after: int, *, named: bool, spent: bool) -> None:
        super().__init__(message, retry_after)
        self.named = named
        self.spent = spent


def read_answer(
    status: int, headers: MultiMapping[str], raw: bytes, url: URL, api: URL, now: float
) -> Answer:
    """What GitHub's answer to a GET of ``url`` says, its body ``raw`` as it came.

    A 200 gives its JSON (GitHubUnavailable when it has none) and the pages its
    ``Link`` header names, on ``api``'s origin only; a 304 gives its ETag alone. Any
    other status raises the GitHubError it means: a rate limit as RateLimitedAnswer,
    read at ``now`` (epoch seconds)."""
    etag = headers.get("etag")
    if status == 304:
        return Answer(status, etag, None, None)
    body = json_body(raw)
    if status != 200:
        raise_failure(status, headers, body, now)
    if body is None:
        raise GitHubUnavailable("GitHub sent an empty or malformed JSON body")
    links = headers.getall("link", [])
    following = next_page(links, url, api)
    last = None
    if following is not None:
        # only a hint for asking ahead: a bad one is ignored, not a failure
        with contextlib.suppress(GitHubUnavailable):
            last = next_page(links, url, api, rel="last")
    return Answer(status, etag, body, following, last)


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    remaining: int
    used: int | None
    reset: datetime | None
    resource: str | None


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """Read the ``x-ratelimit-*`` headers, or None when they are absent or malformed."""
    try:
        limit = int(headers["x-ratelimit-limit"])
        remaining = int(headers["x-ratelimit-remaining"])
    except (KeyError, ValueError):
        return None
    return RateLimit(
        limit=limit,
        remaining=remaining,
        used=_count(headers.get("x-ratelimit-used")),
        reset=_instant(_count(headers.get("x-ratelimit-reset"))),
        resource=headers.get("x-ratelimit-resource"),
    )


def core_rate_limit(body: Any, resource: str = "core") -> RateLimit | None:
    """The core budget in a ``GET /rate_limit`` answer (``resources.core``, in every API
    version), or another ``resource``'s (``graphql``); None when the body has none that
    reads as one."""
    resources = body.get("resources") if isinstance(body, dict) else None
    core = resources.get(resource) if isinstance(resources, dict) else None
    if not isinstance(core, dict):
        return None
    limit, remaining = core.get("limit"), core.get("remaining")
    if not isinstance(limit, int) or not isinstance(remaining, int):
        return None
    if not _whole(limit) or not _whole(remaining):
        return None
    used, reset = core.get("used"), core.get("reset")
    return RateLimit(
        limit=limit,
        remaining=remaining,
        used=used if _whole(used) else None,
        reset=_instant(reset) if _whole(reset) else None,
        resource=resource,
    )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**_MAX_DIGITS


# more digits than any count or epoch second GitHub sends: a longer number reads as
# this many nines (int() refuses past 4300 digits, and nothing needs the exact value)
_MAX_DIGITS = 18


def _count(value: str | None) -> int | None:
    """A header's non-negative decimal number, or None unless it is one: ASCII digits
    alone (``str.isdigit`` also takes "²", which ``int`` refuses)."""
    if value is None:
        return None
    value = value.strip()
    if not value or not value.isascii() or not value.isdigit():
        return None
    return int(value) if len(value) <= _MAX_DIGITS else 10**_MAX_DIGITS - 1


def _instant(epoch: int | None) -> datetime | None:
    """An epoch second as a time, or None when it is none or past what datetime holds."""
    if epoch is None:
        return None
    try:
        return datetime.fromtimestamp(epoch, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def rate_limit_retry_after(
    status: int, headers: Mapping[str, str], message: str, now: float
) -> int | None:
    """Seconds to wait when a 403/429 is a rate limit, or None when it is not one."""
    if status not in (403, 429):
        return None
    retry_after = _count(headers.get("retry-after"))
    if retry_after is not None:
        return min(MAX_RATE_LIMIT_WAIT, max(1, retry_after))
    if headers.get("x-ratelimit-remaining") == "0":
        reset = _count(headers.get("x-ratelimit-reset"))
        if reset is not None:
            return min(MAX_RATE_LIMIT_WAIT, max(1, reset - int(now)))
        return DEFAULT_RETRY_AFTER
    if status == 429 or "rate limit" in message.lower():
        return DEFAULT_RETRY_AFTER  # a secondary limit that gave no hint
    return None


def names_a_wait(headers: Mapping[str, str]) -> bool:
    """Whether a rate-limited answer said how long to wait (else the wait is a guess)."""
    return "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0"


def json_body(raw: bytes) -> Any:
    """The answer's JSON, or None when it is empty or not JSON."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def error_message(body: Any) -> str:
    """The ``message`` of GitHub's error body, or "" when there is none."""
    message = body.get("message", "") if isinstance(body, dict) else ""
    return message if isinstance(message, str) else ""


def failure(status: int, headers: Mapping[str, str], body: Any, now: float) -> GitHubError:
    """The error an answer other than 200 and 304 means. A rate limit carries the wait
    the answer named (or the default when it named none), before any doubling."""
    message = error_message(body)
    if status == 404:
        return GitHubNotFound(message or "Not Found")
    retry_after = rate_limit_retry_after(status, headers, message, now)
    if retry_after is not None:
        return GitHubRateLimited("GitHub's rate limit is exhausted", retry_after)
    if status in (401, 403):
        return GitHubUnavailable(f"GitHub refused the request ({status})")
    return GitHubUnavailable(f"GitHub answered {status}", retryable=status in (502, 503, 504))


def raise_failure(status: int, headers: Mapping[str, str], body: Any, now: float) -> NoReturn:
    """Raise the error an answer other than 200 and 304 means (``failure``): a rate
    limit as RateLimitedAnswer, with whether the answer named its wait and whether it
    says the budget is spent."""
    error = failure(status, headers, body, now)
    if isinstance(error, GitHubRateLimited):
        raise RateLimitedAnswer(
            str(error),
            error.retry_after,
            named=names_a_wait(headers),
            spent=headers.get("x-ratelimit-remaining") == "0",
        )
    raise error


def public_gists(body: Any) -> list[Gist]:
    """The public gists of one page of a gist list; GitHubUnavailable when the page is
    not a list of gists.

    With the user's own token GitHub lists their secret gists too: they are dropped
    here, before anything can list, store, count or fetch them.
    """
    if not isinstance(body, list):
        raise GitHubUnavailable("GitHub sent a gist list that is not a JSON array")
    try:
        parsed = [parse_gist(item, keep_raw=True) for item in body]
    except ValueError as exc:
        raise GitHubUnavailable("GitHub sent a malformed gist list") from exc
    return [gist for gist in parsed if gist.public]


def raw_item(item: Any) -> str:
    """One item's JSON as GitHub sent it: every key, in GitHub's order (``json`` keeps
    it), written compactly; non-ASCII as ``\\u`` escapes, so that any string GitHub sent
    (even a lone surrogate) fits a PostgreSQL text column."""
    return json.dumps(item, separators=(",", ":"))


def parse_gist(item: Any, *, keep_raw: bool = False) -> Gist:
    """Turn one item of GitHub's gist list into a Gist; raise ValueError if it is malformed.
    With ``keep_raw`` the Gist carries the item as GitHub sent it (``raw_item``)."""
    if not isinstance(item, dict):
        raise ValueError("gist is not an object")
    try:
        files_obj = item["files"]
        if not isinstance(files_obj, dict):
            raise ValueError("files is not an object")
        files = []
        for name, meta in files_obj.items():
            if not isinstance(meta, dict):
                raise ValueError("file is not an object")
            files.append(
                GistFile(
                    filename=_opt_str(meta.get("filename")) or _opt_str(str(name)) or "",
                    language=_opt_str(meta.get("language")),
                    type=_opt_str(meta.get("type")),
                    size=_opt_int(meta.get("size")),
                    raw_url=_opt_url(meta.get("raw_url")),
                )
            )
        owner = item.get("owner")
        if not isinstance(owner, dict):
            owner = item.get("user")  # older payloads name the owner only there
        description = item.get("description")
        gist_id, html_url = item["id"], item["html_url"]
        if not isinstance(gist_id, str) or not GIST_ID.fullmatch(gist_id):
            raise ValueError("gist id is not an id")
        html_url = _opt_url(html_url)
        if html_url is None:
            raise ValueError("html_url is not a string")
        comments = item.get("comments", 0)
        if isinstance(comments, bool) or not isinstance(comments, int):
            raise ValueError("comments is not an integer")
        return Gist(
            id=gist_id,
            html_url=html_url,
            description=_opt_str(description),
            # only a plain true is public: anything else counts as secret
            public=item.get("public") is True,
            created_at=parse_timestamp(item["created_at"]),
            updated_at=parse_timestamp(item["updated_at"]),
            comments=comments,
            owner=_login(owner.get("login")) if isinstance(owner, dict) else None,
            files=tuple(files),
            truncated=bool(item.get("truncated", False)),
            raw=raw_item(item) if keep_raw else None,
            owner_id=_opt_id(owner.get("id")) if isinstance(owner, dict) else None,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed gist: {exc!r}") from exc


def _login(value: Any) -> str | None:
    return storable_text(value) if isinstance(value, str) and 0 < len(value) <= 39 else None


def _opt_str(value: Any) -> str | None:
    # every string GitHub sends is stored and answered: one it could not be is replaced
    return storable_text(value) if isinstance(value, str) else None


# what no database can store (NUL, a lone surrogate): in a URL, its %XX escapes
_UNSTORABLE_IN_URL = re.compile("[\x00\ud800-\udfff]")


def _opt_url(value: Any) -> str | None:
    # escaped as request_target would send them, so that the URL still names the same
    # file (replaced by U+FFFD, a raw URL would name another one)
    return _UNSTORABLE_IN_URL.sub(_percent, value) if isinstance(value, str) else None


def _opt_id(value: Any) -> int | None:
    # a BIGINT column: GitHub's ids are positive and far below 2**63
    number = _opt_int(value)
    return number if number is not None and 0 < number < 2**63 else None


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def next_page(
    link_headers: Iterable[str], request_url: URL, api: URL, rel: str = "next"
) -> URL | None:
    """The ``rel="next"`` (or other ``rel``) target of an answer's ``Link`` headers,
    resolved against the URL that was asked for; None when there is no such link.

    The next page must be on the API's origin (scheme, host and port) and carry no user
    or password: a Link header must not steer us, and our token, to another host.
    GitHubUnavailable when it does, or when the target is no URL at all.
    """
    target = None
    for value in _LINK_VALUE.finditer(", ".join(link_headers)):
        reference, params = value.groups()
        rels = [
            (quoted if quoted is not None else bare).lower().split()
            for name, quoted, bare in _LINK_PARAM.findall(params)
            if name.lower() == "rel"
        ]
        if rels and rel in rels[0]:  # only the first rel counts (RFC 8288 3.3)
            target = reference.strip()
            break
    if target is None:
        return None
    try:
        resolved = request_url.join(URL(target))
        foreign = resolved.origin() != api.origin() or bool(resolved.user or resolved.password)
    except (ValueError, TypeError):
        raise GitHubUnavailable("GitHub's next-page link is not a URL") from None
    if foreign:
        raise GitHubUnavailable("GitHub's next-page link points to another host")
    return resolved


_PAGE_PARAM = re.compile(r"([?&]page=)([0-9]{1,6})(?=&|$)")

PageKey = tuple[str, str, int | None, str, tuple[tuple[str, str], ...]]


def page_key(url: str | URL) -> PageKey:
    """What names one page of a list, whatever the spelling of its URL: the origin, the
    path and the query's pairs in sorted order. GitHub's own links name one page with
    its query in different orders (``?per_page=100&page=3`` in one answer's
    ``rel="last"``, ``?page=3&per_page=100`` in the next one's ``rel="next"``)."""
    parsed = url if isinstance(url, URL) else URL(url, encoded=True)
    return (
        (parsed.scheme or "").lower(),
        (parsed.host or "").lower(),
        parsed.port,
        parsed.raw_path,
        tuple(sorted(parsed.query.items())),
    )


def pages_between(following: URL, last: URL, limit: int) -> list[str]:
    """The URLs of the pages from ``following`` (a ``rel="next"`` target) to ``last``
    (the ``rel="last"`` one), at most ``limit`` of them, made from ``following`` with
    only its ``page`` number changed, as GitHub's own links are; [] when the two differ
    in anything else (their queries compared as pairs, in any order), or ``last`` is
    not after ``following``."""
    text, end = str(following), str(last)
    found = _PAGE_PARAM.search(text)
    final = _PAGE_PARAM.search(end)
    if found is None or final is None:
        return []
    first, last_no = int(found.group(2)), int(final.group(2))
    if last_no <= first or page_key(_PAGE_PARAM.sub(r"\g<1>0", text)) != page_key(
        _PAGE_PARAM.sub(r"\g<1>0", end)
    ):
        return []
    head, tail = text[: found.start(2)], text[found.end(2) :]
    return [f"{head}{n}{tail}" for n in range(first, min(last_no, first + limit - 1) + 1)]


def request_target(url: str) -> str:
    """``url`` fit to be sent: what a path or query may not hold as it is (a space,
    non-ASCII, a stray ``%``) percent-encoded as UTF-8, existing %XX escapes left as
    they are, nothing else rewritten (unlike yarl, which also decodes and normalises).
    The fragment is never sent."""
    parts = urlsplit(url)
    path = _UNSAFE_IN_TARGET.sub(_percent, parts.path) or "/"
    query = _UNSAFE_IN_TARGET.sub(_percent, parts.query)
    origin = str(URL(url).origin())  # the host as yarl sends it (IDNA), userinfo dropped
    return origin + path + ("?" + query if query else "")


def _percent(found: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in found.group().encode("utf-8", "surrogatepass"))
