"""Options shared by several commands, declared once (same flag, default and help everywhere).

Each function returns a fresh ``typer.Option`` to use as a parameter default, e.g.
``device: str = options.device()``. The values are validated by the stage configs
(:mod:`gdo.config`), not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


# ---- pool reading (ingest; also profile, select, run)
def media_root(help: str = "Folder media paths resolve against and are confined to (default: each pool file's folder).") -> Path:
    return typer.Option(None, "--media-root", help=help)


def fmt(help: str = "Force a row format: llava_ov, llava_video, llava, sharegpt, openai_content (default: auto-detect).") -> str:
    return typer.Option(None, "--format", help=help)


def frames() -> int:
    return typer.Option(32, "--frames", min=1, help="T: frames a video is sampled to.")


def seed(help: str = "Seed of clustering, the model stage, tie draws, random fill and the baseline.") -> int:
    return typer.Option(42, "--seed", help=help)


def mode() -> str:
    return typer.Option("default", "--mode", help="default (the method with its flaws fixed) or paper (the release exactly).")


# ---- profile (also run)
def model() -> Optional[Path]:
    return typer.Option(None, "--model", help="Local VLM folder (e.g. Qwen3-VL-8B-Instruct): also compute loss_video, "
                                              "loss_blind, vds, ppl, sc, tnc_judge.")


def k() -> Optional[int]:
    return typer.Option(None, "--k", min=1, help="Clusters (default: the mode's k rule).")


def visual_encoder() -> Optional[Path]:
    return typer.Option(None, "--visual-encoder",
                        help="Local CLIP/SigLIP folder for visual embeddings (default: weight-free features).")


def text_encoder() -> str:
    return typer.Option("minilm", "--text-encoder",
                        help="minilm (all-MiniLM-L6-v2, offline) | hashing | local sentence-transformers folder.")


def batch_size() -> int:
    return typer.Option(8, "--batch-size", min=1, help="Model batch size (with --model).")


def model_frames() -> Optional[int]:
    return typer.Option(None, "--model-frames", min=1, help="Frames per video the model sees (default: --frames).")


def device() -> str:
    return typer.Option("auto", "--device", help="Model device: auto | cpu | cuda | cuda:N.")


def trust_remote_code() -> bool:
    return typer.Option(False, "--trust-remote-code", help="Allow the model's own code (explicit opt-in).")


# ---- select (also run)
def preset(help: str = "Goal preset: minloss, diverse, temp or temp_plus (see `gdo presets`).") -> Optional[str]:
    return typer.Option(None, "--preset", "-p", help=help)


def goal() -> Optional[Path]:
    return typer.Option(None, "--goal", "-g", help="Custom goal file (.toml/.yaml), instead of --preset.")


def budget() -> str:
    return typer.Option("auto", "--budget", help="auto (the GDO budget), or a fixed subset size.")


def baseline_mult() -> Optional[float]:
    return typer.Option(None, "--baseline-mult", help="Uni-Nx baseline multiplier (default: the goal's, 10).")


def allow_random_fill() -> bool:
    return typer.Option(False, "--allow-random-fill",
                        help="Default mode: fill a short subset at random, reported (paper mode always does).")


def no_vds() -> bool:
    return typer.Option(False, "--no-vds", help="Ablation: drop the VDS term.")


def no_ppl() -> bool:
    return typer.Option(False, "--no-ppl", help="Ablation: drop the PPL-like (naturalness) term.")


def no_sc() -> bool:
    return typer.Option(False, "--no-sc", help="Ablation: drop the SC/quality term.")


def no_vds_budget() -> bool:
    return typer.Option(False, "--no-vds-budget",
                        help="Ablation: no VDS adjustment of the auto budget (--no-vds keeps it).")


# ---- report (also run)
def thumbnails() -> bool:
    return typer.Option(True, "--thumbnails/--no-thumbnails", help="Decode media for frame thumbnails in report.html.")


def examples() -> int:
    return typer.Option(5, "--examples", min=0, help="How many top and bottom candidates report.html shows.")
