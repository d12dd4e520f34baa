"""The security lint stays meaningful: ruff's S rules (flake8-bandit, bandit's checks)
are on, no family-wide ignore hides them, and every finding let stand on its line says
why (``# noqa: S311 - demo data, not cryptography``)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("src", "tests", "benchmarks", "migrations")
_NOQA_S = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*)(?P<rest>.*)$")


def python_files() -> list[Path]:
    return sorted(path for top in CHECKED for path in (ROOT / top).rglob("*.py"))


def lint_config() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lint: dict[str, object] = config["tool"]["ruff"]["lint"]
    return lint


def test_ruffs_bandit_rules_are_on_and_never_ignored_wholesale() -> None:
    lint = lint_config()
    selected = lint["select"]
    ignored = lint.get("ignore", [])
    per_file = lint.get("per-file-ignores", {})
    assert isinstance(selected, list)
    assert isinstance(ignored, list)
    assert isinstance(per_file, dict)
    assert "S" in selected
    assert [code for code in ignored if code.startswith("S")] == []
    for pattern, codes in per_file.items():
        assert "S" not in codes, f"{pattern} ignores every S rule"
        if any(code.startswith("S") for code in codes):
            assert not pattern.startswith("src"), f"{pattern}: the package notes each on its line"


def test_every_bandit_finding_let_stand_says_why() -> None:
    unexplained = []
    for path in python_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found = _NOQA_S.search(line)
            if found is None or not any(c.startswith("S") for c in found["codes"].split(",")):
                continue
            if not re.match(r"\s+-\s+\S", found["rest"]):
                unexplained.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert unexplained == []
    nosec = "# no" + "sec"  # bandit's own marker: ruff reads noqa only
    assert not [p for p in python_files() if nosec in p.read_text()]
