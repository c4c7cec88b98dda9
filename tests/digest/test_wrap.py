"""Plain-text word wrap: greedy, words never broken, whitespace collapsed, later lines indented."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.digest.render import wrap

WORDS = st.lists(
    st.text(alphabet="abcdéxyz-/:.", min_size=1, max_size=30),
    max_size=40,
)
GAPS = st.sampled_from([" ", "  ", "\n", "\t", " \u2028 "])


@given(WORDS, GAPS, st.integers(min_value=1, max_value=80), st.integers(min_value=0, max_value=10))
def test_wrap_is_greedy_and_keeps_every_word(words: list[str], gap: str, width: int, indent: int) -> None:
    text = gap + gap.join(words) + gap
    out = wrap(text, width, indent)
    lines = out.split("\n") if out else []
    assert [w for line in lines for w in line.split()] == words
    for n, line in enumerate(lines):
        body = line[indent:] if n else line
        assert n == 0 or line[:indent] == " " * indent
        assert body == " ".join(body.split()) and body
        assert len(body) <= width or " " not in body  # only a lone long word overflows
        if n + 1 < len(lines):  # greedy: the next line's first word did not fit on this one
            first = lines[n + 1][indent:].split()[0]
            assert len(body) + 1 + len(first) > width


def test_short_text_is_one_collapsed_line() -> None:
    assert wrap("  sparse\tattention  ", 72, 3) == "sparse attention"
    assert wrap("", 72, 3) == ""
    assert wrap("a b c", 3, 2) == "a b\n  c"
