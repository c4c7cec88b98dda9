"""Followed-author names are matched robustly: case, accents, initials, "Surname, Given" order."""

from __future__ import annotations

import pytest

from service.matching.authors import AuthorMatcher, name_key, same_person

SAME = [
    ("Yann LeCun", "LeCun, Y."),
    ("Yann LeCun", "Y. LeCun"),
    ("Yann LeCun", "YANN LECUN"),
    ("Yann LeCun", "Yann Le Cun"),
    ("Yann LeCun", "LeCun Y"),
    ("Bernhard Schölkopf", "Bernhard Scholkopf"),
    ("Bernhard Schölkopf", "B. Schoelkopf"),
    ("Bernhard Schölkopf", "Schölkopf, Bernhard"),
    ("Jean-Pierre Serre", "J.-P. Serre"),
    ("Geoffrey E. Hinton", "Hinton GE"),
    ("Geoffrey Hinton", "Hinton, Geoffrey E."),
    ("Ludwig van Beethoven", "van Beethoven, L."),
    ("Ludwig van Beethoven", "Beethoven, Ludwig van"),
    ("José Ramón García", "Jose Ramon Garcia"),
    ("LeCun", "Yann LeCun"),  # a bare surname follows every LeCun (the preview shows them)
]
DIFFERENT = [
    ("Yann LeCun", "Yves LeCun"),
    ("Yann LeCun", "Yann Lecunn"),
    ("Jean-Pierre Serre", "Jean-Paul Serre"),
    ("Kaiming He", "Xiangyu Zhang"),
    ("Kaiming He", "He Kaiming"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_spellings_of_one_person_match(a: str, b: str) -> None:
    assert same_person(a, b) and same_person(b, a)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_other_people_do_not_match(a: str, b: str) -> None:
    assert not same_person(a, b) and not same_person(b, a)


def test_a_name_without_letters_has_no_key() -> None:
    assert not name_key("  ,  ") and not name_key("1234")


def test_the_matcher_names_the_papers_spelling_and_the_followed_name() -> None:
    matcher = AuthorMatcher(["Yann LeCun", "Léon Bottou"])
    assert matcher.matches(["Ada Lovelace", "LeCun, Y.", "L. Bottou"]) == [
        ("LeCun, Y.", "Yann LeCun"),
        ("L. Bottou", "Léon Bottou"),
    ]
    assert matcher.matches(["Yves LeCun"]) == []
