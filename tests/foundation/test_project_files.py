"""Project files speak of the project to its readers: a CONTRIBUTING.md, and no one machine's paths."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO

# Home folders and work trees of one machine; /usr/bin/... of a Debian package is not one.
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|Users|root|tmp)/[\w.-]+")


def _tracked(*patterns: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_contributing_guide_covers_what_contributors_do() -> None:
    guide = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for topic in (
        "## Layout",
        "## Running the tests",
        "## Running the benchmarks",
        "requirements.lock",
        "## Adding a migration",
        "## Adding a delivery channel",
        "## Adding a dump parser",
    ):
        assert topic in guide, topic
    assert not [path for path in _tracked() if path.startswith(".notes/")]


def test_documents_hold_no_machine_paths() -> None:
    for name in _tracked("*.md", "Dockerfile", ".ci/*", "pyproject.toml", "bench/results/*.json"):
        text = (REPO / name).read_text(encoding="utf-8")
        found = MACHINE_PATH.findall(text)
        assert not found, (name, found)
