"""Text as shown to people: bidi controls and invisible characters removed, so a title or a name
cannot reorder what is displayed around it ("Trojan Source"-style spoofing) or hide inside itself."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

# Bidi embeddings, overrides and isolates, the directional marks, and the zero-width characters that
# carry no meaning in titles or names. ZWJ and ZWNJ stay: scripts and emoji need them.
CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e"  # LRE RLE PDF LRO RLO
    "\u2066\u2067\u2068\u2069"  # LRI RLI FSI PDI
    "\u200e\u200f\u061c"  # LRM RLM ALM
    "\u200b\u2060\ufeff\u180e"  # zero-width space, word joiner, BOM, Mongolian vowel separator
)
_TABLE = dict.fromkeys(map(ord, CONTROLS))


def neutralise(text: str) -> str:
    """`text` without bidi controls and invisible characters."""
    # Every one of them is outside ASCII, and isascii() is a flag check: most output is ASCII (URLs,
    # labels), and translate() walks every character through a dict.
    return text if text.isascii() else text.translate(_TABLE)


def finalize(value: Any) -> Any:
    """Jinja2's `finalize`: every `{{ ... }}` output passes here (markup keeps being markup)."""
    if isinstance(value, Markup):
        return Markup(neutralise(str(value)))
    if isinstance(value, str):
        return neutralise(value)
    return value
