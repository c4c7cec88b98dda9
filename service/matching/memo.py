"""Bounded memos: what a pass computes again and again for the same pool, kept per context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["remembered"]

K = TypeVar("K")
V = TypeVar("V")


def remembered(memo: dict[K, V], key: K, size: int, make: Callable[..., V], args: tuple[Any, ...]) -> V:
    """memo[key], made by make(*args) first when missing. A memo, not a record: at `size` entries it
    starts over rather than grow."""
    found = memo.get(key)
    if found is None:
        found = make(*args)
        if len(memo) >= size:
            memo.clear()
        memo[key] = found
    return found
