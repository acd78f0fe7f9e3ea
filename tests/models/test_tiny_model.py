"""The offline tiny Qwen2-VL builder (gdo.models.tiny) and `gdo tiny-model`."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from gdo.models.tiny import SPECIAL_TOKENS, build_tiny_model, training_sentences  # noqa: E402


def test_folder_is_small_and_complete(tiny_model):
    names = {p.name for p in tiny_model.iterdir()}
    for required in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                     "preprocessor_config.json", "chat_template.jinja", "processor_config.json",
                     "generation_config.json"):
        assert required in names, required
    size = sum(p.stat().st_size for p in tiny_model.iterdir())
    assert size < 1_000_000, size
    cfg = json.loads((tiny_model / "config.json").read_text())
    assert cfg["model_type"] == "qwen2_vl"
    assert cfg["text_config"]["hidden_size"] == 64
    assert cfg["text_config"]["num_hidden_layers"] == 2
    assert cfg["vision_config"]["patch_size"] == 4


def test_tokenizer_special_tokens_and_template(tiny_model):
    from gdo.models.hf import load_processor

    proc = load_processor(tiny_model)
    tok = proc.tokenizer
    cfg = json.loads((tiny_model / "config.json").read_text())
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    assert len(set(ids.values())) == len(SPECIAL_TOKENS)
    assert cfg["image_token_id"] == ids["<|image_pad|>"]
    assert cfg["video_token_id"] == ids["<|video_pad|>"]
    assert cfg["vision_start_token_id"] == ids["<|vision_start|>"]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    # special tokens are single tokens; byte-level BPE round-trips arbitrary text
    enc = tok("<|im_start|>user\nÜber 3 Äpfel?<|im_end|>", add_special_tokens=False)["input_ids"]
    assert enc[0] == ids["<|im_start|>"] and enc[-1] == ids["<|im_end|>"]
    assert tok.decode(enc) == "<|im_start|>user\nÜber 3 Äpfel?<|im_end|>"
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]}]
    text = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|vision_end|>What colour?<|im_end|>\n<|im_start|>assistant\n")


def test_processor_expands_image_tokens(tiny_model, real_data):
    from PIL import Image

    from gdo.models.hf import load_processor

    proc = load_processor(tiny_model)
    img = Image.open(real_data / "haotian-liu__LLaVA/llava/serve/examples/waterview.jpg").convert("RGB")
    enc = proc(text=["<|vision_start|><|image_pad|><|vision_end|>hi"], images=[img], return_tensors="pt")
    t, h, w = enc["image_grid_thw"][0].tolist()
    assert t == 1 and h * w * 16 <= 32 * 32  # at most max_pixels, 4-pixel patches
    n_pad = int((enc["input_ids"] == proc.image_token_id).sum())
    assert n_pad == h * w // 4  # 2x2 spatial merge
    assert enc["pixel_values"].shape == (h * w, 3 * 2 * 4 * 4)


def test_same_seed_same_weights_different_seed_differs(tmp_path):
    from safetensors.torch import load_file

    a = load_file(str(build_tiny_model(tmp_path / "a", seed=3) / "model.safetensors"))
    b = load_file(str(build_tiny_model(tmp_path / "b", seed=3) / "model.safetensors"))
    c = load_file(str(build_tiny_model(tmp_path / "c", seed=4) / "model.safetensors"))
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "c" / "tokenizer.json").read_bytes()


def test_loads_with_auto_model_and_runs(tiny_model):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model))
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    n_params = sum(p.numel() for p in model.parameters())
    assert 50_000 < n_params < 250_000
    out = model(input_ids=torch.tensor([[1, 20, 30, 2]]))
    assert out.logits.shape == (1, 4, model.config.text_config.vocab_size)


def test_training_sentences_cover_colour_words():
    sents = training_sentences()
    assert len(sents) >= 200
    assert len(set(sents)) == len(sents)
    joined = " ".join(sents).lower()
    for w in ("red", "green", "blue", "yellow", "temporal", "static"):
        assert w in joined


def test_cli_builds_and_checks(tmp_path):
    from typer.testing import CliRunner

    from gdo.cli import app

    res = CliRunner().invoke(app, ["tiny-model", str(tmp_path / "m"), "--seed", "1"])
    assert res.exit_code == 0, res.output
    assert "check ok" in res.output
    assert (tmp_path / "m" / "model.safetensors").exists()
