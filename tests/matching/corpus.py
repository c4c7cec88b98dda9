"""A small hand-written corpus for matching tests (no text from ../shared)."""

from __future__ import annotations

from service.matching.documents import PaperDoc

PAPERS = [
    PaperDoc(
        "p1",
        "Sparse attention for long documents",
        "We study sparse attention patterns that let transformers read long documents. "
        "Block sparse attention keeps memory linear in the sequence length.",
        ["Ada Lovelace", "Alan Turing"],
    ),
    PaperDoc(
        "p2",
        "Compressing the KV-cache of large language models",
        "The key-value cache grows with context. We quantize the KV cache to 4 bits and "
        "evict stale entries, cutting memory by 70% with little loss in perplexity.",
        ["Grace Hopper"],
    ),
    PaperDoc(
        "p3",
        "Linear attention revisited",
        "Linear attention replaces the softmax with a kernel feature map. We show when "
        "linear attention matches softmax attention on language modelling.",
        ["Alan Turing"],
    ),
    PaperDoc(
        "p4",
        "Quantization-aware training of LLaMA-2",
        "Quantized weights and activations make LLaMA-2 cheaper to serve. Quantization-aware "
        "training recovers accuracy at 3 bits.",
        ["Barbara Liskov"],
    ),
    PaperDoc(
        "p5",
        "Galaxy rotation curves without dark matter",
        "We fit rotation curves of spiral galaxies with modified gravity and find no need "
        "for dark matter halos in most of the sample.",
        ["Vera Rubin"],
    ),
    PaperDoc(
        "p6",
        "Dark matter detection with xenon",
        "A xenon time projection chamber sets new limits on weakly interacting dark matter "
        "particles. Attention to background from radon is essential.",
        ["Elena Aprile"],
    ),
    PaperDoc(
        "p7",
        "Graph neural networks for molecules",
        "Message passing graph neural networks predict molecular properties. We add "
        "attention over bonds and improve accuracy on standard benchmarks.",
        ["Marie Curie"],
    ),
    PaperDoc(
        "p8",
        "3D reconstruction from a single image",
        "We reconstruct 3D shape from one photograph with a diffusion prior and sparse depth cues.",
        ["David Marr"],
    ),
]
