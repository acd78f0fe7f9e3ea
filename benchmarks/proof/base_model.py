"""The tiny Qwen2-VL base model of the proof benchmark: built offline, then pretrained.

Architecture (facts from the prototype in issue 16): 28x28 frames, vision patch 14, spatial merge
2, temporal patch 2 (one LM token per frame when frames go in as images, which is how gdo's scorer
feeds video without torchvision), a word-level tokenizer over the world's closed vocabulary with
Qwen's special tokens, and ``initializer_range = 0.1`` in the text, vision and top-level configs
(with the default 0.02 a model this narrow learns nothing visual beyond whole-frame colour).

Pretraining teaches static perception, the answer format and gdo's TNC judge task (on question
templates the pool never uses, written case-folded as gdo's judge writes them), never change over
time: ``world.pretraining_sample``.
Training goes through ``gdo.models.hf.VLMScorer.answer_loss_tensor``, the same masked answer loss
(and chat formatting) gdo's descriptors use, so the base model sees inputs exactly as gdo's
scorer builds them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import world

PATCH, MERGE, TPATCH = 14, 2, 2


def build(out_dir: Path, *, seed: int = 0) -> Path:
    """Write the untrained tiny model, tokenizer and processor to ``out_dir``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from gdo.models.hf import JUDGE_PROMPT
    from gdo.models.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    words = world.vocabulary(["You are a helpful assistant.", "system user assistant", JUDGE_PROMPT])
    vocab = {t: i for i, t in enumerate(list(SPECIAL_TOKENS) + ["[UNK]"] + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    ids = {t: vocab[t] for t in SPECIAL_TOKENS}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        unk_token="[UNK]", additional_special_tokens=list(SPECIAL_TOKENS[1:]),
                                        model_max_length=4096, padding_side="right")
    tokenizer.chat_template = CHAT_TEMPLATE
    px = world.SIZE * world.SIZE
    image_processor = Qwen2VLImageProcessorPil(patch_size=PATCH, merge_size=MERGE, temporal_patch_size=TPATCH,
                                               size={"shortest_edge": px, "longest_edge": px})
    init = 0.1
    config = Qwen2VLConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 96, "intermediate_size": 192, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 4, 4]},
                     "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": True, "initializer_range": init},
        vision_config={"depth": 2, "embed_dim": 48, "hidden_size": 96, "mlp_ratio": 2, "num_heads": 2,
                       "patch_size": PATCH, "spatial_merge_size": MERGE, "temporal_patch_size": TPATCH,
                       "initializer_range": init},
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"], initializer_range=init,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(bos_token_id=ids["<|endoftext|>"],
                                               eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
                                               pad_token_id=ids["<|endoftext|>"])
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    image_processor.save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    (out / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2VLProcessor"}))
    return out


def item(s: world.Sample) -> dict:
    """A gdo ``VLMItem``-style dict: video frames as a list, images as a list of arrays."""
    if s.frames.shape[0] == 0:
        return {"question": s.question, "answer": s.answer, "images": [], "video": None}
    if s.kind == "multi":  # several stills: separate images
        return {"question": s.question, "answer": s.answer, "images": list(s.frames), "video": None}
    if s.is_video:
        return {"question": s.question, "answer": s.answer, "images": [], "video": list(s.frames)}
    return {"question": s.question, "answer": s.answer, "images": [s.frames[0]], "video": None}


def pretrain(model_dir: Path, out_dir: Path, *, steps: int, batch: int, lr: float, seed: int, log=print) -> Path:
    """Pretrain the base on ``world.pretraining_sample`` and save it to ``out_dir``."""
    import torch

    from gdo.models.hf import JUDGE_PROMPT, VLMScorer

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    sc = VLMScorer(model_dir, device="cpu", batch_size=batch)
    model = sc.model
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    t0 = time.perf_counter()
    for step in range(steps):
        batch_items = [item(world.pretraining_sample(rng, JUDGE_PROMPT)) for _ in range(batch)]
        loss = _batch_loss(sc, batch_items)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0 or step == steps - 1:
            log(f"pretrain step {step}: loss {loss.item():.3f} ({time.perf_counter() - t0:.0f} s)")
    model.eval()
    out = Path(out_dir)
    model.save_pretrained(out)
    for f in Path(model_dir).iterdir():
        if f.suffix in (".json", ".jinja") and not (out / f.name).exists():
            (out / f.name).write_bytes(f.read_bytes())
    return out


def _batch_loss(sc, items: list[dict]):
    """Mean masked answer loss over a batch; text-only items go in a separate forward."""
    import torch

    vis = [i for i in items if i["images"] or i["video"] is not None]
    txt = [i for i in items if not (i["images"] or i["video"] is not None)]
    parts = []
    if vis:
        parts.append(sc.answer_loss_tensor(vis, visual=True))
    if txt:
        parts.append(sc.answer_loss_tensor(txt, visual=False))
    return torch.cat(parts).mean()
