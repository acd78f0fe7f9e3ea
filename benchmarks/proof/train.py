"""Stage 2 of the proof benchmark: one-epoch training from the base and checkpoint evaluation.

Training: AdamW, constant learning rate, a seeded shuffle of the training set, one epoch,
batches of ``batch`` samples, loss = gdo's masked answer loss (``VLMScorer.answer_loss_tensor``,
the definition VDS and PPL use). Checkpoints every fifth of the epoch (``gdo.trainplan.schedule``,
the same rule ``gdo train-plan`` prints for real runs), each evaluated in memory.

Evaluation: the model reads the question (with its frames) in the chat template and its answer
is the colour word with the highest next-token logit at the answer position (six colours, chance
1/6). ``goal``: held-out colour-change clips asking "first" / "finally"; ``static``: the guard,
held-out static questions on images and clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

import world


class PoolItems:
    """Load candidates of the proof pool by gdo uid (``ov::ID::t0`` / ``vv::ID::t0``) as scorer items."""

    def __init__(self, pool_dir: Path) -> None:
        self.dir = pool_dir
        self.rows: dict[str, dict] = {}
        for name, prefix in (("pool_images.jsonl", "ov"), ("pool_videos.jsonl", "vv")):
            for line in open(pool_dir / name):
                r = json.loads(line)
                self.rows[f"{prefix}::{r['id']}::t0"] = r
        self.truth = {json.loads(x)["id"]: json.loads(x) for x in open(pool_dir / "truth.jsonl")}
        self._frames: dict[tuple, list[np.ndarray]] = {}

    def frames(self, paths: list[str]) -> list[np.ndarray]:
        key = tuple(paths)
        if key not in self._frames:
            self._frames[key] = [cv2.cvtColor(cv2.imread(str(self.dir / p)), cv2.COLOR_BGR2RGB) for p in paths]
        return self._frames[key]

    def item(self, uid: str) -> dict:
        r = self.rows[uid]
        fr = self.frames(r["images"])
        q = r["messages"][0]["content"].split("\n", 1)[1]
        a = r["messages"][1]["content"]
        if uid.startswith("vv::"):
            return {"question": q, "answer": a, "images": [], "video": fr}
        return {"question": q, "answer": a, "images": fr, "video": None}

    def facts(self, uid: str) -> dict:
        return self.truth[self.rows[uid]["id"]]


def sample_item(s: world.Sample) -> dict:
    if s.is_video:
        return {"question": s.question, "answer": s.answer, "images": [], "video": list(s.frames)}
    return {"question": s.question, "answer": s.answer, "images": [s.frames[0]], "video": None}


class Evaluator:
    """Accuracy of the scorer's model on fixed evaluation items (argmax over the colour words)."""

    def __init__(self, scorer, sets: dict[str, list[dict]], batch: int = 50) -> None:
        import torch

        self.sc = scorer
        self.sets = sets
        self.batch = batch
        tok = scorer.tokenizer
        self.colour_ids = torch.tensor([tok.convert_tokens_to_ids(c) for c in world.NAMES])
        self._enc: dict[str, list] = {}
        for name, items in sets.items():  # processor outputs are fixed: build them once
            encs = []
            for i in range(0, len(items), batch):
                chunk = items[i:i + batch]
                from gdo.models.hf import _as_item

                its = [_as_item(x) for x in chunk]
                texts = [scorer._template(scorer._messages(it, visual=True), generation=True) for it in its]
                enc = scorer._process(texts, scorer._visual_inputs(its), padding_side="right")
                gold = torch.tensor([world.NAMES.index(x["answer"]) for x in chunk])
                encs.append((enc, gold))
            self._enc[name] = encs

    def __call__(self) -> dict[str, float]:
        import torch

        model = self.sc.model
        was = model.training
        model.eval()
        out = {}
        with torch.inference_mode():
            for name, encs in self._enc.items():
                right = total = 0
                for enc, gold in encs:
                    logits = model(**enc, use_cache=False).logits
                    last = enc["attention_mask"].sum(1) - 1
                    pick = logits[torch.arange(len(last)), last][:, self.colour_ids].argmax(-1)
                    right += int((pick == gold).sum())
                    total += len(gold)
                out[name] = right / total
        model.train(was)
        return out


def train_run(scorer, base_state: dict, items: list[dict], *, batch: int, lr: float, seed: int,
              evaluate: Evaluator, checkpoints: int = 5) -> list[dict]:
    """Train one epoch from ``base_state`` on ``items``; evaluate at every checkpoint.

    Returns one dict per checkpoint: ``{"step", "samples_seen", <benchmark>: accuracy}``.
    """
    import torch

    from gdo.trainplan import schedule

    model = scorer.model
    model.load_state_dict(base_state)
    model.train()
    torch.manual_seed(seed)
    order = np.random.default_rng(seed).permutation(len(items))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sch = schedule(len(items), batch, checkpoints)
    marks = dict(zip(sch["checkpoint_steps"], sch["samples_seen"]))
    curve = []
    for step in range(1, sch["steps"] + 1):
        idx = order[(step - 1) * batch: step * batch]
        b = [items[i] for i in idx]
        loss = scorer.answer_loss_tensor(b, visual=True).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in marks:
            curve.append({"step": step, "samples_seen": marks[step], **evaluate()})
    model.eval()
    return curve
