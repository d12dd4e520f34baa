"""Data sets for the fake GitHub: the demo users, octocat's documented gist, ada (the
README's screenshot), bulk users with deterministic code-like files for benchmarks, and
one huge log file."""

from __future__ import annotations

import functools
import random

from gistcache.testing.fake_github.state import GitHubState

# the gists of "ada", the user of the README's screenshot, newest first as GitHub lists
ADA_GISTS = [
    (
        "Fetch a page and retry on 5xx",
        {
            "fetch.py": (
                "import time\n"
                "import requests\n\n"
                "def fetch(url, tries=3):\n"
                "    for attempt in range(tries):\n"
                "        response = requests.get(url, timeout=10)\n"
                "        if response.status_code < 500:\n"
                "            return response\n"
                "        time.sleep(2 ** attempt)\n"
                "    return requests.get(url, timeout=10)\n"
            ),
            "README.md": "# fetch\n\nA tiny retrying `requests.get` wrapper.\n",
        },
    ),
    (
        "Notes on the café's Wi-Fi scraper",
        {
            "scrape.py": (
                "import requests\n"
                "from bs4 import BeautifulSoup\n\n"
                "html = requests.get('https://example.org/menu').text\n"
                "soup = BeautifulSoup(html, 'html.parser')\n"
                "print([li.text for li in soup.select('li.crème')])\n"
            ),
        },
    ),
    ("Shell one-liners", {"tips.sh": "curl -s https://example.org | jq .\n"}),
]


class SeededState(GitHubState):
    """The fake's state with ways to fill it."""

    def seed(self, users: int, gists_per_user: int = 5, *, seed: int = 1) -> None:
        """Deterministic demo users ``user1`` … ``userN`` with small multi-file gists."""
        rng = random.Random(seed)  # noqa: S311 - demo data, not cryptography
        words = ["alpha", "beta", "gamma", "delta", "import requests", "TODO", "print('hi')"]
        for n in range(1, users + 1):
            login = f"user{n}"
            self.add_user(login)
            for g in range(gists_per_user):
                files = {
                    f"file{f}{rng.choice(['.py', '.md', '.txt', '.sh'])}": "\n".join(
                        rng.choice(words) for _ in range(rng.randint(1, 20))
                    )
                    + "\n"
                    for f in range(rng.randint(1, 3))
                }
                self.add_gist(login, files, description=f"{login} gist {g}")

    def seed_bulk_user(self, login: str, gists: int, files_per_gist: int, file_bytes: int) -> None:
        """``login`` with ``gists`` gists of ``files_per_gist`` code-like files of at most
        ``file_bytes`` bytes each (whole lines), for benchmarks.

        A file's contents depend only on (login, gist number, file number), so the same
        arguments give the same bytes in any process (see ``bulk_gist_files``).
        """
        self.add_user(login)
        for g in range(gists):
            files = bulk_gist_files(login, g, files_per_gist, file_bytes)
            self.add_gist(login, files, description=f"{login} bulk gist {g}")

    def seed_ada(self) -> None:
        """ada, whose gists the README's screenshot searches for ``requests\\.get``."""
        if "ada" not in self.users:
            self.add_user("ada")
            for description, files in reversed(ADA_GISTS):  # oldest first
                self.add_gist("ada", files, description=description)

    def seed_octocat(self) -> None:
        """octocat and the gist of GitHub's own documentation examples."""
        if "octocat" not in self.users:
            self.add_user("octocat", 1)
            self.add_gist(
                "octocat",
                {
                    "hello_world.rb": "class HelloWorld\n  def initialize(name)\n    @name = name\n"
                    '  end\n  def hello\n    "Hello #{@name}!"\n  end\nend\n'
                },
                description="Hello World Examples",
                gist_id="aa5a315d61ae9438b18d",
            )


def huge_text(size: int) -> bytes:
    """``size`` bytes of log-like lines, with one line saying ``needle`` at the very end."""
    line = b"2024-01-01T00:00:00Z INFO request handled in 12 ms by worker-7 ok\n"
    tail = b"the needle is here\n"
    body = line * ((size - len(tail)) // len(line))
    return body + b"." * (size - len(body) - len(tail)) + tail


@functools.cache
def _corpus() -> bytes:
    """About 1 MB of deterministic code- and log-like lines, built once per process.

    Most lines are ordinary; a few say TODO, FIXME or HACK, or hold an IPv4 address,
    so that benchmark patterns find some (not all) lines.
    """
    rng = random.Random("gistcache-bulk-corpus")  # noqa: S311 - test data
    words = [
        "alpha", "beta", "cache", "delta", "event", "frame", "graph", "index",
        "queue", "retry", "session", "token", "upload", "value", "worker", "yield",
    ]  # fmt: skip
    templates = [
        (30, "def {a}_{b}(self, {c}):"),
        (30, "    return self.{a}.get('{b}', {n})"),
        (25, "    {a} = {b}_{c}({n}, timeout={n})"),
        (15, "import {a}"),
        (15, "from {a}.{b} import {c}"),
        (20, "    if {a} > {n}:"),
        (20, "        log.info('{a} {b} %s', {c})"),
        (20, "# {a} {b} {c} {a} {b}"),
        (20, "2024-01-01T00:{n2}:{n2}Z INFO {a} handled in {n} ms by worker-{n2}"),
        (3, "    # TODO: {a} the {b} before {c}"),
        (1, "    # FIXME {a} breaks when {b} is empty"),
        (1, "    # HACK: {c} until {a} is fixed"),
        (2, "    host = '10.{n3}.{n3}.{n3}'  # {a}"),
    ]
    weights = [w for w, _ in templates]
    forms = [t for _, t in templates]
    lines = []
    for _ in range(24_000):
        form = rng.choices(forms, weights)[0]
        lines.append(
            form.format(
                a=rng.choice(words),
                b=rng.choice(words),
                c=rng.choice(words),
                n=rng.randrange(10_000),
                n2=f"{rng.randrange(60):02d}",
                n3=rng.randrange(256),
            )
        )
    return ("\n".join(lines) + "\n").encode()


def bulk_gist_files(login: str, gist: int, files: int, size: int) -> dict[str, bytes]:
    """The files of a bulk user's gist number ``gist``, by name."""
    suffixes = (".py", ".md", ".txt")
    return {
        f"file{f}{suffixes[f % len(suffixes)]}": bulk_file_text(login, gist, f, size)
        for f in range(files)
    }


def bulk_file_text(login: str, gist: int, file: int, size: int) -> bytes:
    """At most ``size`` bytes of whole lines from the corpus, starting at a place that
    depends only on the arguments: any process computes the same bytes."""
    corpus = _corpus()
    offset = random.Random(f"{login}/{gist}/{file}").randrange(len(corpus))  # noqa: S311 - test data, not secrets
    offset = corpus.find(b"\n", offset) + 1  # start on a line; 0 after the last one
    if offset + size <= len(corpus):
        text = corpus[offset : offset + size]
    else:
        text = (corpus[offset:] + corpus * (size // len(corpus) + 1))[:size]
    return text[: text.rfind(b"\n") + 1]
