"""The top-level `paperboy` group: sub-commands load when used, setup mistakes print one line.

Each sub-command module imports what its work needs (SQLAlchemy, Jinja2, the scheduler, the embedding
model...). Loading them only when a command runs keeps `paperboy --help` and a typo's "No such command"
from paying for all of them. `paperboy --help` lists each command from the short help kept in
`LazyCommand` (tests/foundation/test_cli_startup.py checks it matches the real one).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from service.cli.setup_errors import explain

SETUP_EXIT = 2
RUNNING_AS_PROGRAM = False  # set by service.cli.main(): the process is `paperboy` itself, not a test runner


@dataclass(frozen=True)
class LazyCommand:
    """A sub-command by name: the module and attribute that define it, and its one-line help."""

    name: str
    target: str  # "service.cli.papers:papers_app" (a Typer) or "service.cli.papers:export_command"
    help: str

    def load(self) -> Any:
        module, attr = self.target.split(":")
        return getattr(importlib.import_module(module), attr)


class _Placeholder(TyperCommand):
    """Stands in for a sub-command in help listings and suggestions until it is used."""

    def __init__(self, lazy: LazyCommand) -> None:
        super().__init__(name=lazy.name, help=lazy.help)
        self.lazy = lazy


def real_command(lazy: LazyCommand) -> Any:
    """The click command a LazyCommand names, built the way `add_typer`/`command` would build it."""
    obj = lazy.load()
    holder = typer.Typer(add_completion=False)
    if isinstance(obj, typer.Typer):
        holder.add_typer(obj, name=lazy.name)
    else:
        holder.command(lazy.name)(obj)
    built = typer.main.get_command(holder)
    return built.commands[lazy.name] if isinstance(built, TyperGroup) else built


class PaperboyGroup(TyperGroup):
    """TyperGroup with lazily loaded sub-commands and one handler for setup mistakes."""

    lazy_commands: tuple[LazyCommand, ...] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for lazy in self.lazy_commands:
            self.commands.setdefault(lazy.name, _Placeholder(lazy))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and isinstance(self.commands.get(args[0]), _Placeholder):
            placeholder = self.commands[args[0]]
            assert isinstance(placeholder, _Placeholder)
            self.commands[args[0]] = real_command(placeholder.lazy)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            line = explain(exc)
            if line is None:
                raise
            typer.secho(f"error: {line}", fg="red", err=True)
            raise typer.Exit(SETUP_EXIT) from exc
