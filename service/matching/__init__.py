"""Matching: which new papers each interest wants, how much, and why.

Pure library code on plain objects (no database rows). The usual calls:

* ``MatchContext(pool, references=seeds, embedder=..., cache=...)`` once per batch, then
  ``rank(interest, context, candidates=new_ids)`` per interest -> ``list[Match]``;
* ``ProfileIndex(interests)`` once, ``percolate(index, analysed_papers)`` per batch -> the
  (paper, profile) pairs whose words match, for 100,000s of profiles;
* ``parse_query`` / ``compile_interest`` to validate what a subscriber typed.

Names are loaded lazily: importing the package (or just its query module) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule. Loaded on first use (PEP 562), so that importing
# service.matching.query for a form does not pull in numpy and scipy.
_EXPORTS = {
    "AnalyzedPaper": "documents",
    "PaperDoc": "documents",
    "analyze_paper": "documents",
    "Explanation": "explain",
    "SeedEvidence": "explain",
    "Snippet": "explain",
    "CompiledInterest": "interests",
    "Interest": "interests",
    "InterestError": "interests",
    "compile_interest": "interests",
    "PercolationResult": "percolator",
    "ProfileIndex": "percolator",
    "percolate": "percolator",
    "QueryError": "query",
    "parse_query": "query",
    "Match": "ranking",
    "MatchContext": "ranking",
    "rank": "ranking",
    "score_pool": "ranking",
    "EmbeddingCache": "semantic",
    "MiniLMEmbedder": "semantic",
    "SemanticUnavailable": "semantic",
    "embed_papers": "semantic",
    "embedding_key": "semantic",
    "semantic_available": "semantic",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = [
    "AnalyzedPaper",
    "CompiledInterest",
    "EmbeddingCache",
    "Explanation",
    "Interest",
    "InterestError",
    "Match",
    "MatchContext",
    "MiniLMEmbedder",
    "PaperDoc",
    "PercolationResult",
    "ProfileIndex",
    "QueryError",
    "SeedEvidence",
    "SemanticUnavailable",
    "Snippet",
    "analyze_paper",
    "compile_interest",
    "embed_papers",
    "embedding_key",
    "parse_query",
    "percolate",
    "rank",
    "score_pool",
    "semantic_available",
]
