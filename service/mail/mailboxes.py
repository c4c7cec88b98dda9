"""Returned mail on disk: single message files (.eml), Maildir folders, or folders of message files."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path


class MailboxError(ValueError):
    """A path that holds no readable mail; the message names it."""


def messages_in(path: Path) -> Iterator[tuple[str, bytes]]:
    """(reference, bytes) of each message under `path`; the reference is where it was read from."""
    if path.is_file():
        try:
            yield str(path), path.read_bytes()
        except OSError as exc:
            raise MailboxError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        return
    if not path.is_dir():
        raise MailboxError(f"{path}: no such file or folder")
    if (path / "cur").is_dir() and (path / "new").is_dir():
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(box.keys()):
            with box.get_file(key) as handle:
                yield f"{path}#{key}", handle.read()
        return
    for child in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        yield str(child), child.read_bytes()
