"""Text analysis: the same folding, compounds and stems for papers and profiles."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.matching.analysis import analyze, fold, positions, strip_latex_accents, terms


def test_folding_removes_case_accents_and_compatibility_forms() -> None:
    assert fold("Schrödinger") == fold("SCHRODINGER") == "schrodinger"
    assert fold("ﬁnite") == "finite"  # the fi ligature
    assert fold("Ｑｕａｎｔｕｍ") == "quantum"  # full-width letters


def test_compounds_index_joined_form_and_parts_with_positions() -> None:
    tokens = analyze("KV-cache for LLaMA-2 in 3D")
    assert [(t.term, t.position) for t in tokens] == [
        ("kvcach", 0),
        ("kv", 0),
        ("cach", 1),
        ("llama2", 3),
        ("llama", 3),
        ("2", 4),
        ("3d", 6),
    ]


def test_offsets_point_into_the_original_text() -> None:
    text = "Efficient KV-cache compression"
    spans = [text[t.start : t.end] for t in analyze(text)]
    assert spans == ["Efficient", "KV-cache", "KV", "cache", "compression"]


def test_stemming_and_stop_words() -> None:
    assert terms("The quantized models are quantizing") == ["quantiz", "model", "quantiz"]
    assert terms("of the and") == []
    assert terms("analysis of PDEs") == terms("analysis of PDE")  # plural acronym


def test_stop_words_keep_their_positions() -> None:
    assert [t.position for t in analyze("analysis of the equations")] == [0, 3]


def test_decimal_numbers_stay_whole() -> None:
    assert terms("version 2.5 released") == ["version", "2.5", "releas"]


def test_latex_accents_in_author_names() -> None:
    assert strip_latex_accents("C. Bal\\'azs and P. Erd\\H{o}s") == "C. Balazs and P. Erdos"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abcKV-‐3 .2éﬁ\n")) | st.characters(), max_size=80))
def test_fast_indexing_path_agrees_with_full_analysis(text: str) -> None:
    assert positions(text) == [(t.term, t.position) for t in analyze(text)]
