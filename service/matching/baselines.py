"""The methods paperboy is measured against, written as their projects do them.

* keyword alert (arXiv / Google Scholar alerts): a paper is sent when any keyword word
  appears; alerts have no ranking, so hits are listed by how many keyword words they
  contain, then in listing order;
* TF-IDF + linear SVM on the seeds, every other paper a negative (arxiv-sanity's
  recommendations: bigram TF-IDF, ``LinearSVC(class_weight="balanced", C=0.1)``);
* embedding cosine to the seeds (zotero-arxiv-daily: the mean of cosine similarities to
  the library, newest seeds weighted ``1 / (1 + log10(rank))``).

Each takes the evaluation's papers and returns a score per paper; higher is better.
scikit-learn is a development dependency, imported only when the SVM baseline runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .analysis import terms
from .documents import PaperDoc

__all__ = ["EmbeddingCosine", "KeywordAlert", "TfidfSvm"]


class KeywordAlert:
    """Any keyword word present: the paper is in the alert."""

    def __init__(self, papers: Sequence[PaperDoc]) -> None:
        self.papers = [set(terms(f"{p.title} {p.abstract}")) for p in papers]

    def scores(self, keywords: str) -> np.ndarray:
        words = set(terms(keywords))  # quotes, commas and operators are not words
        count = np.array([len(words & present) for present in self.papers], dtype=float)
        # Listing order breaks ties: an alert shows matching papers as they were announced.
        return count - np.arange(len(count)) / (10.0 * max(len(count), 1))


class TfidfSvm:
    """arxiv-sanity: one linear SVM per profile, seeds positive, every other paper negative."""

    def __init__(self, papers: Sequence[PaperDoc]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(
            strip_accents="unicode",
            lowercase=True,
            stop_words="english",
            ngram_range=(1, 2),
            max_features=20_000,
            sublinear_tf=True,
        )
        self.matrix: Any = vectorizer.fit_transform([f"{p.title} {p.abstract}" for p in papers])

    def scores(self, seed_rows: Sequence[int]) -> np.ndarray:
        from sklearn.svm import LinearSVC

        labels = np.zeros(self.matrix.shape[0])
        labels[list(seed_rows)] = 1
        classifier = LinearSVC(class_weight="balanced", C=0.1, max_iter=10_000, tol=1e-6)
        classifier.fit(self.matrix, labels)
        return np.asarray(classifier.decision_function(self.matrix), dtype=float)


class EmbeddingCosine:
    """zotero-arxiv-daily: time-decayed mean cosine to the seed papers' embeddings."""

    def __init__(self, embeddings: np.ndarray) -> None:
        self.embeddings = embeddings

    def scores(self, seed_rows: Sequence[int]) -> np.ndarray:
        decay = 1.0 / (1.0 + np.log10(np.arange(len(seed_rows)) + 1.0))
        decay /= decay.sum()
        return (self.embeddings @ self.embeddings[list(seed_rows)].T) @ decay
