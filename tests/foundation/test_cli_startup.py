"""`paperboy --help` and a typo answer without loading the database, the web or the embedding stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from service.cli import PaperboyCommands
from service.cli.group import real_command

# Modules `paperboy --help` must not import: each costs a noticeable part of a second (or several).
HEAVY = (
    "numpy",
    "scipy",
    "sklearn",
    "onnxruntime",
    "tokenizers",
    "sqlalchemy",
    "alembic",
    "jinja2",
    "css_inline",
    "httpx",
    "apscheduler",
    "fastapi",
    "slack_sdk",
    "pydantic_settings",
)

PROBE = """
import json, sys
sys.argv = ["paperboy", *json.loads(sys.argv[1])]
from service.cli import main
try:
    main()
except SystemExit:
    pass
print("\\nLOADED=" + json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def _loaded_by(args: list[str]) -> tuple[set[str], str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True, text=True, timeout=120
    )
    out, _, loaded = result.stdout.rpartition("\nLOADED=")
    assert loaded, result.stderr[-2000:]
    return set(json.loads(loaded)), out + result.stderr


@pytest.mark.parametrize("args", [[], ["--help"], ["pappers"]])
def test_help_and_typos_import_no_heavy_module(args: list[str]) -> None:
    loaded, output = _loaded_by(args)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "Usage" in output or "No such command" in output


def test_importing_the_command_imports_no_heavy_module() -> None:
    probe = "import json, sys, service.cli; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert not set(json.loads(result.stdout)) & set(HEAVY)


@pytest.mark.parametrize("lazy", PaperboyCommands.lazy_commands, ids=lambda c: c.name)
def test_the_help_listed_for_each_command_is_its_own(lazy) -> None:  # type: ignore[no-untyped-def]
    real = real_command(lazy)
    assert real.name == lazy.name
    assert real.get_short_help_str(limit=300) == lazy.help
