"""The embedding model: real ONNX inference when the [semantic] extra is installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from service.matching import semantic
from service.matching.documents import PaperDoc
from service.matching.semantic import (
    MemoryEmbeddingCache,
    NpzEmbeddingCache,
    SemanticUnavailable,
    embed_papers,
    embedding_key,
    semantic_available,
    vector_from_bytes,
    vector_to_bytes,
)

needs_model = pytest.mark.skipif(not semantic_available(), reason="the [semantic] extra is not installed")


@pytest.fixture(scope="module")
def embedder() -> semantic.MiniLMEmbedder:
    return semantic.MiniLMEmbedder()


class CountingEmbedder:
    """Wraps the real embedder to count how many texts reach the model."""

    def __init__(self, inner: semantic.MiniLMEmbedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.texts = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed(texts)


@pytest.mark.semantic
@needs_model
def test_vectors_are_normalised_and_meaningful(embedder: semantic.MiniLMEmbedder) -> None:
    vectors = embedder.embed(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The girl is carrying a baby.",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.7 > 0.1 > unrelated  # all-MiniLM-L6-v2 gives about 0.75 and -0.1


@pytest.mark.semantic
@needs_model
def test_batching_does_not_change_vectors(embedder: semantic.MiniLMEmbedder) -> None:
    texts = [f"Paper {i} on {'quantum ' * i}error correction." for i in range(11)]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)


@pytest.mark.semantic
@needs_model
def test_each_paper_is_embedded_once(embedder: semantic.MiniLMEmbedder, tmp_path) -> None:
    counting = CountingEmbedder(embedder)
    docs = [PaperDoc("a", "Dark matter", "Halos."), PaperDoc("b", "Graph networks", "Molecules.")]
    cache = NpzEmbeddingCache(tmp_path / "vectors.npz")
    first = embed_papers(docs, counting, cache)
    assert counting.texts == 2
    again = embed_papers(docs, counting, NpzEmbeddingCache(tmp_path / "vectors.npz"))  # reloaded from disk
    assert counting.texts == 2
    assert np.array_equal(first, again)
    edited = [PaperDoc("a", "Dark matter", "Halos, revised."), docs[1]]
    embed_papers(edited, counting, cache)
    assert counting.texts == 3  # a changed abstract is embedded again


def test_keys_follow_the_text() -> None:
    a = PaperDoc("x", "Title", "Abstract")
    assert embedding_key(a) == embedding_key(PaperDoc("x", "Title", "Abstract", ["Someone"]))
    assert embedding_key(a) != embedding_key(PaperDoc("x", "Title", "Abstract v2"))


def test_memory_cache_and_bytes_round_trip() -> None:
    cache = MemoryEmbeddingCache()
    vector = np.linspace(-1, 1, 384, dtype=np.float32)
    cache.put_many("m", {"k": vector})
    assert cache.get_many("m", ["k", "missing"]).keys() == {"k"}
    assert cache.get_many("other-model", ["k"]) == {}
    assert np.array_equal(vector_from_bytes(vector_to_bytes(vector)), vector)
    assert len(vector_to_bytes(vector)) == 384 * 4


def test_missing_extra_gives_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        semantic.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real(name, *a),
    )
    assert not semantic_available()
    with pytest.raises(SemanticUnavailable, match=r"pip install 'paperboy\[semantic\]'"):
        semantic.MiniLMEmbedder()


@pytest.mark.semantic
@needs_model
def test_the_model_is_loaded_by_the_first_text_to_embed_only() -> None:
    """A dispatch pass reads stored vectors: building the embedder must not load onnxruntime's model
    (about 250 MB a worker) until a text is actually embedded."""
    embedder = semantic.MiniLMEmbedder()
    assert not embedder.loaded
    assert embedder.embed([]).shape == (0, semantic.DIMENSION)
    assert not embedder.loaded
    vector = embedder.embed(["graph neural networks"])
    assert embedder.loaded and np.isclose(np.linalg.norm(vector), 1.0)
    # Its idle threads wait without spinning: spinning cost 60% more CPU on a busy machine.
    options = embedder._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
