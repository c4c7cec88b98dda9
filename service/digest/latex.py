"""LaTeX in titles, abstracts and author names shown as readable text (`Schr\\"odinger` -> Schrödinger).

Only the LaTeX fragments of a text go through pylatexenc: math between dollars, macros with their
arguments, accents, `{\\it ...}` groups and escaped specials. The rest stays as it was written, so a
plain `%`, `&`, `~10` or `$5 and $10` is never eaten as LaTeX. The stored text is never changed: this
runs where a digest item is built for display.
"""

from __future__ import annotations

import re
from functools import lru_cache

from service.digest.model import Segment

_FRAGMENT = re.compile(
    r"""
      \$\$?(?P<math>[^$]{1,400}?)\$\$?                     # inline or display math
    | \\[`'"^~=.](?:\s*\{\s*\\?[A-Za-z]?\s*\}|\s*\\?[A-Za-z])  # accents: \"o, \'{a}, \^\i
    | \\[uvHcdbtkr]\{\s*\\?[A-Za-z]\s*\}                    # letter accents: \v{s}, \c{c}
    | \{\\[A-Za-z]+\s[^{}]*\}                             # {\it linear}, {\bf x}
    | \\[A-Za-z]+\*?(?:\s*\{[^{}]*\})*                    # \alpha, \emph{x}, \frac{a}{b}
    | \\[%&$\#_{}]                                        # escaped specials: \% \& \$
    | \{(?P<group>[^{}\\$]{1,60})\}                       # BibTeX case protection: {G}aussian
    """,
    re.VERBOSE,
)
_LATEXISH_MATH = re.compile(r"[\\^_{}]|^\s*[A-Za-z]\s*$")
_TRIGGERS = ("\\", "$", "{")


@lru_cache(maxsize=1)
def _converter():  # type: ignore[no-untyped-def]
    from pylatexenc.latex2text import LatexNodes2Text  # imported on first use: it is slow to load

    return LatexNodes2Text(math_mode="text", strict_latex_spaces=False)


@lru_cache(maxsize=8192)
def _fragment_text(fragment: str) -> str:
    try:
        text = str(_converter().latex_to_text(fragment))
    except Exception:  # a fragment pylatexenc cannot read is shown as it was written
        return fragment
    return " ".join(text.split())  # display math comes back with line breaks and indents


def _replace(match: re.Match[str]) -> str:
    fragment = match.group(0)
    math = match.group("math")
    if math is not None and not _LATEXISH_MATH.search(math):
        return fragment  # "$5 and $10" is money, not math
    if match.group("group") is not None:
        return match.group("group")
    return _fragment_text(fragment)


@lru_cache(maxsize=32_768)
def readable(text: str) -> str:
    """`text` with its LaTeX rendered as Unicode; text without LaTeX comes back unchanged (kept: a
    pass shows the same titles and snippets in digest after digest)."""
    if not any(trigger in text for trigger in _TRIGGERS):
        return text
    return _FRAGMENT.sub(_replace, text)


def readable_segments(segments: list[Segment]) -> list[Segment]:
    """Snippet segments made readable; a math span cut by a highlight is rendered whole."""
    return list(_readable_segments(tuple(segments)))


@lru_cache(maxsize=16_384)
def _readable_segments(segments: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """readable_segments, kept: a pass shows one paper's snippet, highlighted alike, again and again."""
    out: list[Segment] = []
    pending: list[Segment] = []
    for segment in segments:
        pending.append(segment)
        joined = "".join(s.text for s in pending)
        if (joined.count("$") - joined.count("\\$")) % 2:
            continue  # inside $...$: wait for its closing dollar
        if len(pending) == 1:
            out.append(Segment(readable(segment.text), segment.hit))
        else:
            out.append(Segment(readable(joined)))  # unmarked: marking it all would mark too much
        pending = []
    if pending:
        out.extend(Segment(readable(s.text), s.hit) for s in pending)
    return tuple(out)
