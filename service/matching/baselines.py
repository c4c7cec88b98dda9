"""The methods paperboy is measured against, written as their projects do them.

* keyword alert (arXiv / Google Scholar alerts): a paper is sent when any keyword word
  appears; alerts have no ranking, so hits are listed by how many keyword words they
  contain, then in listing order;
* TF-IDF + linear SVM on the seeds, every other paper a negative (arxiv-sanity's
  recommendations: bigram TF-IDF, ``LinearSVC(class_weight="balanced", C=0.1)``);
* embedding cosine to the seeds (zotero-arxiv-daily: the mean of cosine similarities to
  the library, newest seeds weighted ``1 / (1 + log10(rank))``);
* semantic search on the keywords (the same MiniLM model: the keywords' sentence vector
  against each paper's, by cosine), Okapi BM25 over title and abstract (``rank_bm25``'s
  ``BM25Okapi`` with its defaults, the project's analysis for tokens), and the sum of the
  two z-scored: the strongest simple anchors for a reader who types words;
* the same methods given feedback, for the learning-over-time replay: the SVM retrained on
  seeds and liked papers, the embedding centroid of seeds and liked papers.

Each takes the evaluation's papers and returns a score per paper; higher is better.
scikit-learn is a development dependency, imported only when the SVM baseline runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .analysis import terms
from .documents import PaperDoc

__all__ = [
    "EmbeddingCentroid",
    "EmbeddingCosine",
    "KeywordAlert",
    "OkapiBM25",
    "SemanticSearch",
    "TfidfSvm",
    "zsum",
]


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
        """Seeds (and liked papers) positive; disliked papers are negatives like every other paper."""
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


class EmbeddingCentroid:
    """Rocchio on sentence vectors: cosine to the mean of the positives (seeds, liked papers)."""

    def __init__(self, embeddings: np.ndarray) -> None:
        self.embeddings = embeddings

    def scores(self, positive_rows: Sequence[int], start: np.ndarray | None = None) -> np.ndarray:
        """``start`` (e.g. the keywords' vector) joins the positives as one more example."""
        vectors = [self.embeddings[list(positive_rows)]] if len(positive_rows) else []
        if start is not None:
            vectors.append(start[None, :])
        centroid = np.concatenate(vectors).mean(axis=0)
        return self.embeddings @ centroid


class SemanticSearch:
    """Cosine between the keywords' sentence vector and each paper's (same model as paperboy)."""

    def __init__(self, embeddings: np.ndarray, embed_text: Callable[[str], np.ndarray]) -> None:
        self.embeddings = embeddings
        self.embed_text = embed_text

    def scores(self, keywords: str) -> np.ndarray:
        return self.embeddings @ self.embed_text(keywords)


class OkapiBM25:
    """Okapi BM25 (``rank_bm25.BM25Okapi``, k1 1.5, b 0.75) over title + abstract."""

    def __init__(self, papers: Sequence[PaperDoc]) -> None:
        from rank_bm25 import BM25Okapi

        self.model = BM25Okapi([terms(f"{p.title} {p.abstract}") or [""] for p in papers])

    def scores(self, keywords: str) -> np.ndarray:
        return np.asarray(self.model.get_scores(list(dict.fromkeys(terms(keywords)))), dtype=float)


def zsum(*signals: np.ndarray) -> np.ndarray:
    """The sum of z-scored signals: the usual way to fuse two rankers without tuning."""
    total = np.zeros_like(signals[0], dtype=float)
    for values in signals:
        spread = values.std()
        if spread > 1e-12:
            total += (values - values.mean()) / spread
    return total
