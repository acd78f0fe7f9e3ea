"""Training and evaluation commands for the paper's contract (``gdo train-plan RUN_DIR``).

The contract (GDO_METHOD.md section 6, docs/METHOD.md): full SFT of Qwen3-VL-8B-Instruct for one
epoch, learning rate 2e-5, batch 1 per device, max length 8192 tokens, at most 50,176 pixels per
frame, a checkpoint every fifth of the epoch; evaluation with lmms-eval on mvbench, videomme,
mlvu_test and lvbench at 32 frames, 1 fps, at most 602,112 pixels. The GDO subset and its
baseline are trained under the same contract from the same base, so only the data differs.

``build_train_plan`` reads the trainer exports that ``gdo run --export swift|llamafactory`` left
in ``RUN_DIR/exports`` (``*.swift*.jsonl`` files; ``dataset_info.json`` with its LLaMA-Factory
files), counts each set's samples, and computes steps per epoch = ceil(n / global batch) and
``save_steps`` = ceil(steps / 5). With ``save_strategy steps`` both trainers (transformers'
Trainer underneath) save at every multiple of ``save_steps`` and at the last step, so the
checkpoints are known in advance and the plan lists the lmms-eval command of each, writing to
one folder per checkpoint that ``gdo compare --gdo ... --baseline ...`` reads back.

Flag names are those of ms-swift (``swift sft``; image/video pixel limits through the
``MAX_PIXELS`` / ``VIDEO_MAX_PIXELS`` / ``FPS_MAX_FRAMES`` environment variables its Qwen-VL
template reads) and of LLaMA-Factory (``llamafactory-cli train`` with ``cutoff_len``,
``image_max_pixels``, ``video_max_pixels``, ``video_maxlen``, ``dataset_dir``).
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The paper's training contract (GDO_METHOD.md section 6).
CONTRACT: dict[str, Any] = {
    "epochs": 1,
    "learning_rate": 2e-5,
    "per_device_batch": 1,
    "max_length": 8192,
    "max_pixels": 50176,
    "frames": 32,
    "checkpoints_per_epoch": 5,
}
#: The paper's evaluation contract (lmms-eval).
EVAL_CONTRACT: dict[str, Any] = {
    "tasks": ("mvbench", "videomme", "mlvu_test", "lvbench"),
    "max_num_frames": 32,
    "fps": 1,
    "max_pixels": 602112,
}


class TrainPlanError(ValueError):
    """RUN_DIR holds no usable trainer export (the message says what to run)."""


@dataclass
class ExportSet:
    """One training set found in RUN_DIR/exports (``subset`` or ``baseline``).

    Attributes:
        name: set name (``subset``, ``baseline``).
        n: samples (one record = one candidate = one sample).
        swift: ms-swift JSONL files of the set.
        llamafactory: LLaMA-Factory dataset names (keys of dataset_info.json) of the set.
    """

    name: str
    n: int = 0
    swift: list[Path] = field(default_factory=list)
    llamafactory: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _count_jsonl(p: Path) -> int:
    with open(p, "rb") as f:
        return sum(1 for line in f if line.strip())


def _set_name(stem: str) -> str:
    base = stem.split(".")[0]
    return base[: -len("_frames")] if base.endswith("_frames") else base


def find_exports(run_dir: str | Path) -> dict[str, ExportSet]:
    """Find the trainer exports of a run and count each set's samples.

    Returns:
        set name -> ExportSet (``subset`` and ``baseline`` when both were exported).

    Raises:
        TrainPlanError: no ``exports`` folder, or neither ms-swift nor LLaMA-Factory files in it,
            or the two formats disagree on a set's size.
    """
    ex = Path(run_dir) / "exports"
    hint = ("run `gdo run POOL... --export swift --export llamafactory --out RUN_DIR` (or "
            "`gdo.export.export`) first")
    if not ex.is_dir():
        raise TrainPlanError(f"{ex}: no exports folder; {hint}")
    sets: dict[str, ExportSet] = {}
    swift_n: dict[str, int] = {}
    for p in sorted(ex.glob("*.jsonl")):
        if ".swift" not in p.name:
            continue
        name = _set_name(p.name)
        s = sets.setdefault(name, ExportSet(name))
        s.swift.append(p.resolve())
        swift_n[name] = swift_n.get(name, 0) + _count_jsonl(p)
    lf_n: dict[str, int] = {}
    info_path = ex / "dataset_info.json"
    if info_path.exists():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise TrainPlanError(f"{info_path}: not valid JSON ({e})") from None
        for key, entry in sorted(info.items()):
            fname = entry.get("file_name") if isinstance(entry, dict) else None
            if not fname or not (ex / fname).exists():
                raise TrainPlanError(f"{info_path}: dataset {key!r} names file {fname!r}, which is not in {ex}")
            name = _set_name(key[4:] if key.startswith("gdo_") else key)
            try:
                recs = json.loads((ex / fname).read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise TrainPlanError(f"{ex / fname}: not valid JSON ({e})") from None
            s = sets.setdefault(name, ExportSet(name))
            s.llamafactory.append(key)
            lf_n[name] = lf_n.get(name, 0) + len(recs)
    if not sets:
        raise TrainPlanError(f"{ex}: no ms-swift (*.swift.jsonl) or LLaMA-Factory (dataset_info.json) export; {hint}")
    for name, s in sets.items():
        if name in swift_n:
            s.counts["swift"] = swift_n[name]
        if name in lf_n:
            s.counts["llamafactory"] = lf_n[name]
        if len(set(s.counts.values())) > 1:
            raise TrainPlanError(f"{ex}: set {name!r} has {s.counts['swift']} ms-swift records but "
                                 f"{s.counts['llamafactory']} LLaMA-Factory records; re-export both")
        s.n = next(iter(s.counts.values()))
    return sets


def schedule(n: int, global_batch: int, checkpoints: int = CONTRACT["checkpoints_per_epoch"]) -> dict[str, Any]:
    """Steps of one epoch and the checkpoint steps for ``n`` samples.

    steps = ceil(n / global_batch) (the last partial batch is kept); save_steps =
    ceil(steps / checkpoints); checkpoints at every multiple of save_steps below steps and at
    the last step (both trainers save at the end under ``save_strategy steps``).

    Returns:
        ``{"n", "global_batch", "steps", "save_steps", "checkpoint_steps", "samples_seen"}``
        (samples seen at each checkpoint = min(step x global_batch, n)).

    Raises:
        ValueError: n < 1 or global_batch < 1.
    """
    if n < 1:
        raise ValueError(f"cannot train on {n} samples")
    if global_batch < 1:
        raise ValueError(f"global batch must be >= 1, got {global_batch}")
    steps = math.ceil(n / global_batch)
    save = max(1, math.ceil(steps / checkpoints))
    ck = list(range(save, steps, save)) + [steps]
    return {"n": n, "global_batch": global_batch, "steps": steps, "save_steps": save,
            "checkpoint_steps": ck, "samples_seen": [min(s * global_batch, n) for s in ck]}


def build_train_plan(run_dir: str | Path, *, model: str = "Qwen/Qwen3-VL-8B-Instruct", gpus: int = 1,
                     grad_accum: int = 1, output_root: str | Path | None = None,
                     eval_root: str | Path | None = None, template: str = "qwen3_vl",
                     lmms_model: str = "qwen3_vl", tasks: tuple[str, ...] = EVAL_CONTRACT["tasks"],
                     deepspeed: str | None = None) -> dict[str, Any]:
    """The commands to train the subset and the baseline under the paper's contract and evaluate them.

    Args:
        run_dir: a ``gdo run`` folder with ``exports/``.
        model: base checkpoint (hub id or local folder), the same for both runs.
        gpus: devices per run (global batch = 1 x gpus x grad_accum).
        grad_accum: gradient accumulation steps (the paper: 1).
        output_root: where the trainers write checkpoints (default RUN_DIR/train).
        eval_root: where lmms-eval writes results (default RUN_DIR/eval).
        template: LLaMA-Factory template of the model.
        lmms_model: lmms-eval model name.
        tasks: lmms-eval tasks.
        deepspeed: optional DeepSpeed config (ms-swift: ``zero2``/``zero3``; LLaMA-Factory: a JSON file).

    Returns:
        ``{"contract", "sets": {name: {"n", "schedule", "swift", "llamafactory", "lmms_eval"}},
        "start_eval", "compare"}`` with shell command strings.

    Raises:
        TrainPlanError: see ``find_exports``; no ``subset`` set.
    """
    run = Path(run_dir).resolve()
    sets = find_exports(run)
    if "subset" not in sets:
        raise TrainPlanError(f"{run / 'exports'}: no subset export (found: {', '.join(sorted(sets))})")
    out_root = Path(output_root) if output_root else run / "train"
    ev_root = Path(eval_root) if eval_root else run / "eval"
    gb = CONTRACT["per_device_batch"] * gpus * grad_accum
    q = shlex.quote
    env = (f"MAX_PIXELS={CONTRACT['max_pixels']} VIDEO_MAX_PIXELS={CONTRACT['max_pixels']} "
           f"FPS_MAX_FRAMES={CONTRACT['frames']}")
    if gpus > 1:
        env = f"NPROC_PER_NODE={gpus} " + env
    plan: dict[str, Any] = {"run_dir": str(run), "model": model, "contract": dict(CONTRACT),
                            "eval_contract": {**EVAL_CONTRACT, "tasks": list(tasks)}, "sets": {}}
    margs = (f"max_num_frames={EVAL_CONTRACT['max_num_frames']},fps={EVAL_CONTRACT['fps']},"
             f"max_pixels={EVAL_CONTRACT['max_pixels']}")
    launch = f"accelerate launch --num_processes {gpus} -m lmms_eval --model {lmms_model}"

    def lmms(ckpt: str, out: Path) -> str:
        return (f"{launch} --model_args {q('pretrained=' + ckpt + ',' + margs)} --tasks {','.join(tasks)} "
                f"--batch_size 1 --output_path {q(str(out))}")

    for name in sorted(sets, key=lambda s: (s != "subset", s)):
        s = sets[name]
        sch = schedule(s.n, gb)
        ckdir = out_root / name
        entry: dict[str, Any] = {"n": s.n, "schedule": sch, "checkpoint_dir": str(ckdir)}
        common = [f"--num_train_epochs {CONTRACT['epochs']}", f"--learning_rate {CONTRACT['learning_rate']:g}",
                  f"--per_device_train_batch_size {CONTRACT['per_device_batch']}",
                  f"--gradient_accumulation_steps {grad_accum}", "--save_strategy steps",
                  f"--save_steps {sch['save_steps']}"]
        if s.swift:
            cmd = [f"{env} swift sft", f"--model {q(model)}", "--train_type full",
                   "--dataset " + " ".join(q(str(p)) for p in s.swift), *common,
                   f"--max_length {CONTRACT['max_length']}", "--torch_dtype bfloat16",
                   f"--output_dir {q(str(ckdir / 'swift'))}", "--add_version false"]
            if deepspeed:
                cmd.append(f"--deepspeed {q(deepspeed)}")
            entry["swift"] = " \\\n    ".join(cmd)
        if s.llamafactory:
            launcher = "llamafactory-cli train" if gpus == 1 else f"FORCE_TORCHRUN=1 NPROC_PER_NODE={gpus} llamafactory-cli train"
            cmd = [launcher, "--stage sft", "--do_train true", f"--model_name_or_path {q(model)}",
                   "--finetuning_type full", f"--template {template}",
                   f"--dataset_dir {q(str(run / 'exports'))}", f"--dataset {','.join(s.llamafactory)}",
                   *common, f"--cutoff_len {CONTRACT['max_length']}",
                   f"--image_max_pixels {CONTRACT['max_pixels']}", f"--video_max_pixels {CONTRACT['max_pixels']}",
                   f"--video_maxlen {CONTRACT['frames']}", "--bf16 true",
                   f"--output_dir {q(str(ckdir / 'llamafactory'))}"]
            if deepspeed:
                cmd.append(f"--deepspeed {q(deepspeed)}")
            entry["llamafactory"] = " \\\n    ".join(cmd)
        trainer_dir = ckdir / ("swift" if s.swift else "llamafactory")
        entry["lmms_eval"] = [
            {"step": st, "samples_seen": ss, "checkpoint": str(trainer_dir / f"checkpoint-{st}"),
             "command": lmms(str(trainer_dir / f"checkpoint-{st}"), ev_root / name / f"checkpoint-{st}")}
            for st, ss in zip(sch["checkpoint_steps"], sch["samples_seen"])]
        plan["sets"][name] = entry
    plan["start_eval"] = lmms(model, ev_root / "start")
    base = "baseline" if "baseline" in sets else None
    if base:
        bs = plan["sets"][base]["schedule"]
        plan["compare"] = (f"gdo compare --gdo {q(str(ev_root / 'subset'))} --baseline {q(str(ev_root / base))} "
                           f"--start {q(str(ev_root / 'start'))} --gdo-batch-size {gb} --baseline-batch-size {gb} "
                           f"--baseline-size {bs['n']} --out {q(str(run / 'compare'))}")
    else:
        plan["compare"] = None
    return plan


def render_train_plan(plan: dict[str, Any], trainer: str = "both") -> str:
    """The plan as a commented shell script (``trainer``: ``swift``, ``llamafactory`` or ``both``)."""
    c = plan["contract"]
    lines = ["#!/usr/bin/env bash",
             f"# gdo train-plan for {plan['run_dir']}",
             f"# contract: {c['epochs']} epoch, lr {c['learning_rate']:g}, batch {c['per_device_batch']} per device, "
             f"max length {c['max_length']}, max pixels {c['max_pixels']}/frame, "
             f"a checkpoint every 1/{c['checkpoints_per_epoch']} epoch; same base model for every set",
             "set -euo pipefail", ""]
    for name, e in plan["sets"].items():
        s = e["schedule"]
        lines.append(f"# --- {name}: {e['n']:,} samples, global batch {s['global_batch']}, {s['steps']:,} steps, "
                     f"save every {s['save_steps']:,} steps -> checkpoints {s['checkpoint_steps']}")
        for t in ("swift", "llamafactory"):
            if t in e and trainer in (t, "both"):
                lines += [f"# {'ms-swift' if t == 'swift' else 'LLaMA-Factory'}", e[t], ""]
    lines.append("# --- evaluation (lmms-eval): the base model once, then every checkpoint")
    lines.append(plan["start_eval"])
    for name, e in plan["sets"].items():
        lines.append(f"# {name}")
        lines += [x["command"] for x in e["lmms_eval"]]
    lines.append("")
    if plan.get("compare"):
        lines += ["# --- peak match and reduction", plan["compare"]]
    else:
        lines.append("# no baseline export found: export one (gdo run ... --export swift) to compare")
    return "\n".join(lines) + "\n"
