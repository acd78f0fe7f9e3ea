"""VDS measures visual dependency: it is ~0 for an untrained model and clearly > 0 once the model
has learnt to answer colour questions that the question alone cannot answer (GDO_METHOD.md 3.1)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from gdo.models.hf import VLMItem, VLMScorer  # noqa: E402

COLOURS = {"red": (1.0, 0.15, 0.15), "green": (0.15, 1.0, 0.15), "blue": (0.15, 0.15, 1.0), "yellow": (1.0, 1.0, 0.15)}
QUESTION = "What colour is this image?"


def _colour_items(paths, n, rng):
    """Crops of real photos (texture kept, luminance only) tinted with one of four colours."""
    from PIL import Image

    grays = []
    for p in paths:
        with Image.open(p) as im:
            grays.append(np.asarray(im.convert("L").resize((96, 96)), dtype=np.float32) / 255.0)
    names = list(COLOURS)
    items = []
    for k in range(n):
        y, x = rng.integers(0, 64, 2)
        crop = 0.35 + 0.65 * grays[k % len(grays)][y:y + 32, x:x + 32]
        name = names[int(rng.integers(len(names)))]
        rgb = (crop[..., None] * np.array(COLOURS[name])[None, None, :] * 255).astype(np.uint8)
        items.append(VLMItem(QUESTION, name.capitalize() + ".", images=[rgb], key=f"c{k}"))
    return items


def test_vds_rises_after_training_on_colour_questions(tiny_model, real_data):
    paths = sorted((real_data / "debian__opencv-doc/examples/data").glob("*.jpg"))
    paths += sorted((real_data / "haotian-liu__LLaVA/llava/serve/examples").glob("*.jpg"))
    assert len(paths) >= 8
    rng = np.random.default_rng(0)
    train = _colour_items(paths[: len(paths) - 4], 96, rng)
    held_out = _colour_items(paths[len(paths) - 4:], 24, rng)  # photos never seen in training

    scorer = VLMScorer(tiny_model, device="cpu", batch_size=12)
    lv0, lb0 = scorer.losses(held_out)
    vds_before = float(np.mean(lb0 - lv0))
    assert abs(vds_before) < 0.05, vds_before

    torch.manual_seed(0)
    opt = torch.optim.AdamW(scorer.model.parameters(), lr=3e-3)
    scorer.model.train()
    first = last = None
    for step in range(60):
        batch = [train[int(i)] for i in rng.integers(0, len(train), 12)]
        loss = scorer.answer_loss_tensor(batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
        last = float(loss.detach())
    scorer.model.eval()
    assert last < first / 4, (first, last)

    lv1, lb1 = scorer.losses(held_out)
    vds_after = float(np.mean(lb1 - lv1))
    # the answer needs the pixels: with them the colour token is nearly free, without them the
    # model can only guess among four colours
    print(f"VDS before {vds_before:.4f} after {vds_after:.4f}; train loss {first:.3f} -> {last:.3f}")
    assert vds_after > 0.25, (vds_before, vds_after)
    assert float(np.mean(lv1)) < float(np.mean(lb1))
    assert np.mean((lb1 - lv1) > 0) > 0.8
