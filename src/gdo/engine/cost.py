"""Cost before any work: ``gdo profile --dry-run`` (issue 17 item 5).

:func:`estimate` counts what a profile run would do -- candidates, distinct media items (videos,
frame lists, image sets), model calls by kind -- measures prompt tokens with the model's own
processor on a fixed sample of the pool, and turns counts into CPU-hours (media, text) and
GPU-hours (model) from :data:`THROUGHPUT`. Every table entry says where its figure comes from;
entries not measured are marked ``estimate`` and so is every figure derived from them.

Model calls per candidate follow GDO_METHOD.md 3 and :mod:`gdo.models.hf`: two loss passes
(with and without the visual input, VDS/PPL), five sampled answers of at most 32 new tokens
(SC), and one text-only judge call per distinct normalised question (TNC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Throughput:
    """One entry of the throughput table.

    Attributes:
        value: units per second per resource (one CPU core or one GPU).
        unit: what is counted ("video items/s/core", "tokens/s/GPU", ...).
        source: where the figure comes from (a benchmark script and machine, or the formula).
        measured: True when ``value`` was measured; False: an estimate.
    """

    value: float
    unit: str
    source: str
    measured: bool


#: Media stage and text embeddings on CPU: measured with benchmarks/bench_ray_media.py and
#: benchmarks/bench_text_embed.py on the development machine (2 x86 cores shared with other jobs,
#: load average 13-14 while measuring, 2026-12-02): pessimistic for a dedicated core.
THROUGHPUT: dict[str, Throughput] = {
    "media/video": Throughput(0.756, "video items/s/core", "benchmarks/bench_ray_media.py, 16 real clips of "
                              "../shared/data/real, local engine, 1 worker, shared 2-core dev machine", True),
    "media/image": Throughput(25.0, "image items/s/core", "estimate: one image decode + hashes, no optical flow "
                              "(about 20x a video item's 8-frame decode + 7 Farneback flows)", False),
    "text/minilm": Throughput(29.5, "candidates/s/core", "benchmarks/bench_text_embed.py, all-MiniLM-L6-v2, "
                              "batch 64, 1 torch thread, shared 2-core dev machine", True),
    "text/hashing": Throughput(20000.0, "candidates/s/core", "estimate: hashing of word tokens", False),
}

#: GPU kinds: (peak dense bf16 TFLOP/s, HBM TB/s) from the vendors' data sheets.
GPU_SPECS = {"h100": (989.0, 3.35), "h200": (989.0, 4.8), "a100": (312.0, 2.0), "l40s": (362.0, 0.864),
             "a10": (125.0, 0.6), "l4": (121.0, 0.3)}
#: Fraction of peak reached; an assumption (typical for batched prefill / decode), hence estimates.
PREFILL_MFU = 0.4
DECODE_BW_UTIL = 0.6
SC_SAMPLES = 5
SC_NEW_TOKENS = 32
JUDGE_NEW_TOKENS = 4


def model_throughput(model_size_b: float, gpu: str, batch_size: int) -> dict[str, Throughput]:
    """Estimated prefill and decode throughput of a ``model_size_b``-billion-parameter VLM in bf16.

    Prefill (loss passes, prompts): ``2 * params`` FLOPs per token at :data:`PREFILL_MFU` of peak.
    Decode (SC samples, judge): memory-bound, one read of the weights (2 bytes/param) per step at
    :data:`DECODE_BW_UTIL` of HBM bandwidth, ``batch_size`` sequences per step.

    Raises:
        ValueError: unknown GPU kind (the message lists the known ones) or size <= 0.
    """
    g = gpu.lower()
    if g not in GPU_SPECS:
        raise ValueError(f"unknown GPU kind {gpu!r}; known: {sorted(GPU_SPECS)}")
    if model_size_b <= 0:
        raise ValueError(f"model size must be > 0 (billions of parameters), got {model_size_b}")
    tflops, tbs = GPU_SPECS[g]
    params = model_size_b * 1e9
    prefill = PREFILL_MFU * tflops * 1e12 / (2 * params)
    decode = DECODE_BW_UTIL * tbs * 1e12 / (2 * params) * batch_size
    src = f"estimate: {g} data sheet ({tflops:g} TFLOP/s bf16, {tbs:g} TB/s)"
    return {"prefill": Throughput(prefill, "tokens/s/GPU", f"{src}, 2*params FLOPs/token at {PREFILL_MFU:.0%} of peak",
                                  False),
            "decode": Throughput(decode, "tokens/s/GPU", f"{src}, weights read once per step at "
                                 f"{DECODE_BW_UTIL:.0%} of bandwidth, batch {batch_size}", False)}


def _sample_rows(n: int, k: int) -> list[int]:
    """``k`` evenly spaced row indices of ``n`` (deterministic)."""
    if n <= k:
        return list(range(n))
    return [int(i) for i in np.linspace(0, n - 1, k).round().astype(np.int64)]


def measure_prompt_tokens(cands: pa.Table, model: str, *, frames: int, sample: int = 256,
                          trust_remote_code: bool = False, processor=None) -> dict[str, Any]:
    """Prompt tokens per candidate measured with the model's processor on ``sample`` rows.

    Text tokens: the chat template of (question, answer) tokenised by the processor. Visual tokens:
    the processor's count for one synthetic 448x448 frame (the difference between a prompt with one
    image and without), times the frames a candidate shows the model (``min(n_frames, frames)``
    for videos, its images otherwise). Returns means and the sample size.

    Raises:
        OSError / ValueError: ``model`` holds no loadable processor.
    """
    from PIL import Image

    from gdo.models.hf import load_processor

    proc = processor if processor is not None else load_processor(model, trust_remote_code=trust_remote_code)
    rows = _sample_rows(cands.num_rows, sample)
    sub = cands.take(pa.array(rows, pa.int64())).select(["question", "answer", "media_kind", "n_frames"]).to_pylist()
    text_tok = []
    for r in sub:
        msgs = [{"role": "user", "content": [{"type": "text", "text": r["question"] or ""}]},
                {"role": "assistant", "content": [{"type": "text", "text": r["answer"] or ""}]}]
        txt = proc.apply_chat_template(msgs, tokenize=False)
        text_tok.append(len(proc(text=[txt])["input_ids"][0]))
    q = [{"role": "user", "content": [{"type": "text", "text": "q"}]}]
    qi = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q"}]}]
    base = len(proc(text=[proc.apply_chat_template(q, tokenize=False)])["input_ids"][0])
    img = Image.new("RGB", (448, 448))
    with_img = len(proc(text=[proc.apply_chat_template(qi, tokenize=False)], images=[img])["input_ids"][0])
    per_frame = max(0, with_img - base)
    vis = [(min(r["n_frames"] or frames, frames) if r["media_kind"] in ("video", "frames")
            else (r["n_frames"] or 0) if r["media_kind"] == "image" else 0) for r in sub]
    return {"sample": len(rows), "text_tokens_mean": float(np.mean(text_tok)) if text_tok else 0.0,
            "visual_tokens_per_frame": per_frame, "frames_mean": float(np.mean(vis)) if vis else 0.0,
            "source": "measured by the model's processor (synthetic 448x448 frame for visual tokens)"}


def load_processor_async(model: str, trust_remote_code: bool = False):
    """Start loading ``model``'s processor in a thread (the dry run reads the pool meanwhile);
    returns a zero-argument function that waits and returns it (or raises its error)."""
    import threading

    box: dict[str, Any] = {}

    def work():
        try:
            from gdo.models.hf import load_processor

            box["p"] = load_processor(model, trust_remote_code=trust_remote_code)
        except BaseException as e:  # re-raised in the caller's thread
            box["e"] = e

    th = threading.Thread(target=work, daemon=True)
    th.start()

    def get():
        th.join()
        if "e" in box:
            raise box["e"]
        return box["p"]
    return get


def estimate(cands: pa.Table, *, frames: int = 32, model: str | None = None, model_frames: int | None = None,
             model_size_b: float | None = None, gpu: str = "h100", gpus: int = 1, cpus: int = 1,
             text_encoder: str = "minilm", batch_size: int = 8, sample: int = 256,
             trust_remote_code: bool = False, processor=None) -> dict[str, Any]:
    """The dry-run estimate for a candidates table (``gdo.schema.CANDIDATE_SCHEMA``).

    Args:
        cands: the candidates (columns uid, question, media_kind, video_key, media or n_frames).
        frames: T (GDO_METHOD.md 2). model / model_frames / batch_size: as for profile.
        model_size_b: billions of parameters for the GPU-hours (None: no GPU figures).
        gpu, gpus: GPU kind (:data:`GPU_SPECS`) and count; cpus: CPU cores for media and text.

    Returns:
        JSON-able dict: ``counts``, ``model_calls``, ``prompt_tokens`` (None without ``model``),
        ``cpu_hours``, ``gpu_hours`` (None without ``model_size_b``), ``throughput`` (the entries
        used, with sources), ``estimate`` (True when any figure rests on an unmeasured entry).
    """
    n = cands.num_rows
    kind = cands.column("media_kind")
    is_video = pc.is_in(kind, pa.array(["video", "frames"])).fill_null(False)
    is_image = pc.equal(kind, "image").fill_null(False)
    n_video_c = int(pc.sum(is_video).as_py() or 0)
    n_image_c = int(pc.sum(is_image).as_py() or 0)
    vk = pc.filter(cands.column("video_key"), is_video)
    n_videos = len(pc.unique(vk.combine_chunks() if isinstance(vk, pa.ChunkedArray) else vk))
    # distinct judge keys (gdo.models.hf.normalise_question, vectorised: lower-case instead of casefold)
    q = pc.utf8_lower(cands.column("question").fill_null(""))
    n_judge = int(pc.count_distinct(pc.binary_join(pc.utf8_split_whitespace(q), " ")).as_py())
    calls = {"loss_video": n, "loss_blind": n, "sc_samples": SC_SAMPLES * n, "judge": n_judge}
    used: dict[str, dict] = {}

    def use(key: str, t: Throughput) -> float:
        used[key] = {"value": t.value, "unit": t.unit, "source": t.source, "measured": t.measured}
        return t.value

    media_s = n_videos / use("media/video", THROUGHPUT["media/video"]) + \
        n_image_c / use("media/image", THROUGHPUT["media/image"])
    tkey = "text/hashing" if text_encoder == "hashing" else "text/minilm"
    text_s = n / use(tkey, THROUGHPUT[tkey])
    cpu_h = {"media": media_s / 3600, "text": text_s / 3600, "wall_h_on_cpus": (media_s + text_s) / 3600 / max(1, cpus)}
    prompt = None
    if model is not None:
        prompt = measure_prompt_tokens(cands, model, frames=model_frames or frames, sample=sample,
                                       trust_remote_code=trust_remote_code, processor=processor)
    gpu_h = None
    if model_size_b is not None:
        tp = model_throughput(model_size_b, gpu, batch_size)
        if prompt is not None:
            vis = prompt["visual_tokens_per_frame"] * prompt["frames_mean"]
            text_t = prompt["text_tokens_mean"]
        else:  # no processor to measure with: a typical Qwen-VL figure, marked as estimate
            vis = 64.0 * min(frames, 32) * (n_video_c / max(1, n)) + 256.0 * (n_image_c / max(1, n))
            text_t = 64.0
            used["prompt_tokens"] = {"value": text_t + vis, "unit": "tokens/candidate", "measured": False,
                                     "source": "estimate without --model: 64 text tokens, 64 per video frame, 256 per image"}
        prefill_tokens = n * (2 * (text_t + vis) - vis) + n * (text_t + vis)  # 2 loss passes (blind has no visual) + SC prompt
        decode_tokens = n * SC_SAMPLES * SC_NEW_TOKENS + n_judge * JUDGE_NEW_TOKENS
        pre_s = prefill_tokens / use("model/prefill", tp["prefill"])
        dec_s = decode_tokens / use("model/decode", tp["decode"])
        gpu_h = {"model": (pre_s + dec_s) / 3600, "prefill": pre_s / 3600, "decode": dec_s / 3600,
                 "wall_h_on_gpus": (pre_s + dec_s) / 3600 / max(1, gpus), "gpu": gpu, "gpus": gpus,
                 "model_size_b": model_size_b, "prefill_tokens": prefill_tokens, "decode_tokens": decode_tokens}
    return {
        "counts": {"candidates": n, "video_candidates": n_video_c, "image_candidates": n_image_c,
                   "text_only_candidates": n - n_video_c - n_image_c, "distinct_videos": n_videos},
        "model_calls": calls if (model is not None or model_size_b is not None) else {**calls, "note": "no model given"},
        "prompt_tokens": prompt,
        "cpu_hours": cpu_h,
        "gpu_hours": gpu_h,
        "throughput": used,
        "estimate": not all(v.get("measured") for v in used.values()),
    }


def format_estimate(e: dict) -> str:
    """Human-readable lines of :func:`estimate`'s result (``gdo profile --dry-run``)."""
    c = e["counts"]
    lines = [f"candidates {c['candidates']:,} (video {c['video_candidates']:,}, image {c['image_candidates']:,}, "
             f"text-only {c['text_only_candidates']:,}); distinct videos {c['distinct_videos']:,}",
             "model calls: " + ", ".join(f"{k} {v:,}" for k, v in e["model_calls"].items() if isinstance(v, int))]
    p = e["prompt_tokens"]
    if p:
        lines.append(f"prompt tokens (measured on {p['sample']} candidates): text {p['text_tokens_mean']:.1f} mean, "
                     f"{p['visual_tokens_per_frame']} per frame x {p['frames_mean']:.1f} frames mean")
    h = e["cpu_hours"]
    lines.append(f"CPU-hours: media {h['media']:.2f}, text {h['text']:.2f} (wall {h['wall_h_on_cpus']:.2f} h on the given cores)")
    g = e["gpu_hours"]
    if g:
        lines.append(f"GPU-hours ({g['model_size_b']:g}B on {g['gpu']}): {g['model']:.2f} "
                     f"(prefill {g['prefill']:.2f}, decode {g['decode']:.2f}; wall {g['wall_h_on_gpus']:.2f} h on {g['gpus']} GPU)")
    for k, t in e["throughput"].items():
        lines.append(f"  {k}: {t['value']:.4g} {t['unit']} [{'measured' if t['measured'] else 'ESTIMATE'}] {t['source']}")
    if e["estimate"]:
        lines.append("figures resting on an ESTIMATE entry are estimates, not measurements")
    return "\n".join(lines)
