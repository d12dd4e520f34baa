"""The fake GitHub's data: users, their gists, the gists' files and revisions."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, SupportsIndex, TypeVar

K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")

LANGUAGES = {
    ".py": ("Python", "application/x-python"),
    ".rb": ("Ruby", "application/x-ruby"),
    ".md": ("Markdown", "text/markdown"),
    ".js": ("JavaScript", "application/javascript"),
    ".sh": ("Shell", "application/x-sh"),
    ".txt": ("Text", "text/plain"),
    ".json": ("JSON", "application/json"),
}


class Changes:
    """How many times any fake's data changed, by its own methods or by a test writing
    to it directly: what was made of the data at one count is still right at that count
    (the routes keep the pages they made). Shared by every fake in the process: another
    fake's change costs a page made again, never an outdated one."""

    count = 0

    @classmethod
    def note(cls) -> None:
        cls.count += 1


class WatchedDict(dict[K, V]):
    """A dict of the fake's data that counts its changes (tests write to them directly)."""

    def __setitem__(self, key: K, value: V) -> None:
        Changes.note()
        super().__setitem__(key, value)

    def __delitem__(self, key: K) -> None:
        Changes.note()
        super().__delitem__(key)

    def __ior__(self, other: Any) -> WatchedDict[K, V]:  # type: ignore[override,misc]
        Changes.note()
        return super().__ior__(other)

    def pop(self, *args: Any) -> Any:
        Changes.note()
        return super().pop(*args)

    def popitem(self) -> tuple[K, V]:
        Changes.note()
        return super().popitem()

    def clear(self) -> None:
        Changes.note()
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        Changes.note()
        super().update(*args, **kwargs)

    def setdefault(self, key: K, default: Any = None) -> Any:
        Changes.note()
        return super().setdefault(key, default)


class WatchedList(list[T]):
    """A list of the fake's data that counts its changes."""

    def __setitem__(self, index: Any, value: Any) -> None:
        Changes.note()
        super().__setitem__(index, value)

    def __delitem__(self, index: Any) -> None:
        Changes.note()
        super().__delitem__(index)

    def __iadd__(self, other: Any) -> WatchedList[T]:  # type: ignore[override,misc]
        Changes.note()
        return super().__iadd__(other)

    def __imul__(self, count: SupportsIndex) -> WatchedList[T]:
        Changes.note()
        return super().__imul__(count)

    def append(self, item: T) -> None:
        Changes.note()
        super().append(item)

    def extend(self, items: Any) -> None:
        Changes.note()
        super().extend(items)

    def insert(self, index: SupportsIndex, item: T) -> None:
        Changes.note()
        super().insert(index, item)

    def remove(self, item: T) -> None:
        Changes.note()
        super().remove(item)

    def pop(self, index: SupportsIndex = -1) -> T:
        Changes.note()
        return super().pop(index)

    def clear(self) -> None:
        Changes.note()
        super().clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        Changes.note()
        super().sort(*args, **kwargs)

    def reverse(self) -> None:
        Changes.note()
        super().reverse()


class _Watched:
    """A dataclass of the fake's data whose attribute writes are counted."""

    def __setattr__(self, name: str, value: Any) -> None:
        Changes.note()
        object.__setattr__(self, name, value)


def watched(value: object) -> bool:
    """Whether every change to ``value`` (a container of the fake's data) is counted:
    one a test put in place itself is a plain dict or list."""
    return type(value) in (WatchedDict, WatchedList)


@dataclass
class FakeFile(_Watched):
    filename: str
    content: bytes
    revision: str = field(init=False)
    # fields of the file's JSON sent as given, over what the fake makes of the file (an
    # odd ``language`` or ``raw_url``, such as one holding a lone surrogate)
    fields: dict[str, Any] = field(default_factory=WatchedDict, init=False)

    def __post_init__(self) -> None:
        # stands for the sha GitHub puts in a raw URL: it names this content, so an
        # edit of the gist that leaves the file alone leaves its raw URL alone too
        blob = hashlib.sha1(usedforsecurity=False)
        blob.update(b"blob %d\0" % len(self.content))
        blob.update(self.content)
        self.revision = blob.hexdigest()

    @property
    def language(self) -> str | None:
        return LANGUAGES.get(_suffix(self.filename), (None, ""))[0]

    @property
    def type(self) -> str:
        return LANGUAGES.get(_suffix(self.filename), (None, "text/plain"))[1]


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


@dataclass
class FakeUser(_Watched):
    login: str
    id: int
    gists: list[FakeGist] = field(default_factory=WatchedList)
    token: str | None = None  # the user's own token: their list then shows secret gists too


@dataclass
class FakeRevision:
    """One commit of a gist's git history, as ``GET /gists/{id}`` lists it."""

    version: str
    committed_at: datetime
    additions: int
    deletions: int
    # the gist's files at this revision (GraphQL's ``files(oid:)`` gives them)
    files: Mapping[str, FakeFile] = field(default_factory=dict)


@dataclass
class FakeGist(_Watched):
    id: str
    owner: FakeUser
    description: str | None
    public: bool
    created_at: datetime
    updated_at: datetime
    files: dict[str, FakeFile]
    comments: int = 0
    old_format: bool = False  # listed in the 2012 shape: the owner only in ``user``
    history: list[FakeRevision] = field(default_factory=WatchedList)  # oldest first
    # fields of the gist's JSON sent as given, over what the fake makes (an odd html_url)
    fields: dict[str, Any] = field(default_factory=WatchedDict)

    def commit(self, before: Mapping[str, FakeFile], when: datetime) -> None:
        """Record a revision going from the files ``before`` to the current ones."""
        additions = deletions = 0
        for name in before.keys() | self.files.keys():
            old, new = before.get(name), self.files.get(name)
            if old is not None and new is not None and old.revision == new.revision:
                continue
            old_lines = Counter(old.content.splitlines()) if old else Counter[bytes]()
            new_lines = Counter(new.content.splitlines()) if new else Counter[bytes]()
            additions += sum((new_lines - old_lines).values())
            deletions += sum((old_lines - new_lines).values())
        seed = f"{self.id}:{len(self.history)}:" + ",".join(
            f"{name}={f.revision}" for name, f in sorted(self.files.items())
        )
        # a file name may hold a lone surrogate (JSON can carry one): hash it as it is
        version = hashlib.sha1(_utf8(seed), usedforsecurity=False).hexdigest()
        self.history.append(FakeRevision(version, when, additions, deletions, dict(self.files)))


class GitHubState:
    """Users and gists by login; the fake's clock moves one second per change."""

    def __init__(self) -> None:
        self.users: dict[str, FakeUser] = WatchedDict()
        self._clock = datetime(2024, 1, 1, tzinfo=UTC)
        self._next_user_id = 1000

    def add_user(
        self, login: str, user_id: int | None = None, *, token: str | None = None
    ) -> FakeUser:
        """A user; with ``token``, requests carrying it are that user's own."""
        if user_id is None:
            self._next_user_id += 1
            user_id = self._next_user_id
        user = FakeUser(login=login, id=user_id, token=token)
        self.users[login.lower()] = user
        return user

    def user(self, login: str) -> FakeUser:
        return self.users[login.lower()]

    def _tick(self) -> datetime:
        self._clock += timedelta(seconds=1)
        return self._clock

    def add_gist(
        self,
        login: str,
        files: Mapping[str, str | bytes],
        *,
        description: str | None = "",
        public: bool = True,
        gist_id: str | None = None,
        comments: int = 0,
        old_format: bool = False,
    ) -> FakeGist:
        """Create a gist owned by ``login`` (created if unknown); it becomes the newest.

        ``public=False`` makes a secret gist, listed only to its owner's token;
        ``old_format`` lists it as GitHub's API did in 2012 (``user``, no ``owner``).
        """
        user = self.users.get(login.lower()) or self.add_user(login)
        now = self._tick()
        if gist_id is None:
            seed = f"{user.login}:{len(user.gists)}:{now.isoformat()}"
            gist_id = hashlib.sha1(_utf8(seed), usedforsecurity=False).hexdigest()[:32]
        gist = FakeGist(
            id=gist_id,
            owner=user,
            description=description,
            public=public,
            created_at=now,
            updated_at=now,
            files=WatchedDict(
                (name, FakeFile(name, _bytes(content))) for name, content in files.items()
            ),
            comments=comments,
            old_format=old_format,
        )
        gist.commit({}, now)
        user.gists.append(gist)
        return gist

    def gist(self, gist_id: str) -> FakeGist:
        for user in self.users.values():
            for gist in user.gists:
                if gist.id == gist_id:
                    return gist
        raise KeyError(gist_id)

    def update_gist(
        self,
        gist_id: str,
        files: Mapping[str, str | bytes | None] | None = None,
        *,
        description: str | None = None,
    ) -> FakeGist:
        """Edit a gist as GitHub would: new contents (None deletes a file), new updated_at."""
        gist = self.gist(gist_id)
        before = dict(gist.files)
        for name, content in (files or {}).items():
            if content is None:
                gist.files.pop(name, None)
            else:
                gist.files[name] = FakeFile(name, _bytes(content))
        if description is not None:
            gist.description = description
        gist.updated_at = self._tick()
        if {n: f.revision for n, f in before.items()} != {
            n: f.revision for n, f in gist.files.items()
        }:
            gist.commit(before, gist.updated_at)  # a description alone is no git commit
        return gist

    def delete_gist(self, gist_id: str) -> None:
        gist = self.gist(gist_id)
        gist.owner.gists.remove(gist)


def _bytes(content: str | bytes) -> bytes:
    return _utf8(content) if isinstance(content, str) else content


def _utf8(text: str) -> bytes:
    """UTF-8, a lone surrogate written as its three bytes (which are not valid UTF-8)."""
    return text.encode("utf-8", "surrogatepass")
