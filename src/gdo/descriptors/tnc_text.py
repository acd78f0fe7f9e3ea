"""Model-free temporal necessity (TNC) from the text embedding (issue 15, item 6).

A logistic-regression classifier on the all-MiniLM-L6-v2 embedding of ``question + "\\n" + answer``
(the embedding :mod:`gdo.descriptors.profile` already stores in ``embeddings.parquet``, so it costs
one dot product per candidate). Trained by ``scripts/train_tnc_text.py`` on NExT-QA val's typed
questions (doc-doc/NExT-QA, MIT licence; temporal = TN/TC/TP vs causal and descriptive).
Weights: ``gdo/descriptors/data/tnc_text_minilm.npz`` (384 float32 + bias, with provenance and
licence strings inside). Figures (README "Goal sets"): cross-validated F1 0.93 on NExT-QA
(5 folds grouped by video) against 0.706 for the lexical rule (GDO_METHOD.md 3.4).

``tnc_text`` = P(temporal) in [0, 1]; used as ``tnc`` when no judge ran, the lexical rule staying
in its own ``tnc_lexical`` column. Only valid on all-MiniLM-L6-v2 embeddings (the hashing fallback
encoder gives NaN).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

WEIGHTS = "tnc_text_minilm.npz"


@lru_cache(maxsize=1)
def load_weights() -> dict:
    """The shipped classifier: ``coef`` float32 (384,), ``intercept``, ``threshold``, ``provenance``, ``licence``."""
    with resources.files("gdo.descriptors.data").joinpath(WEIGHTS).open("rb") as f:
        z = np.load(f, allow_pickle=False)
        return {k: z[k] for k in z.files}


def tnc_text(text_emb: np.ndarray) -> np.ndarray:
    """P(temporal) per candidate from L2-normalised MiniLM embeddings.

    Args:
        text_emb: float (N, 384) all-MiniLM-L6-v2 embeddings (question+answer or question alone).

    Returns:
        float64 (N,) in [0, 1]; sigmoid(coef . x + intercept).

    Raises:
        ValueError: the embeddings are not 384-dimensional.
    """
    x = np.asarray(text_emb, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 384:
        raise ValueError(f"tnc_text needs (N, 384) all-MiniLM-L6-v2 embeddings, got shape {x.shape}")
    w = load_weights()
    logit = x @ w["coef"] + float(w["intercept"])
    return 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))
