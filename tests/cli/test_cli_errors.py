"""Issue 8 across commands: user mistakes end in a clear non-zero exit whose message names the
problem (never a traceback, never a silent success with empty outputs):

* a pool path that does not exist (ingest, profile, select, run);
* a pool where nothing is usable (every row broken);
* an unknown preset (select; run's is in test_run.py);
* a goal file with an unknown key, a ratio outside [0, 1], a minimum above its maximum (select, run;
  run checks the goal before any stage runs);
* a descriptor file in an unknown form (select);
* ``--media-root``: paths escaping it are rejected (reason ``media_outside_root``, with file and line)
  and a pool left with nothing usable fails.

Commands run in-process through Typer's CliRunner (fast); exit codes are the CLI's own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from gdo.cli import app

CORPUS = Path(__file__).parents[1] / "data" / "bad_inputs"
COMMANDS = ("ingest", "profile", "select", "run")
_NOT_FOUND = re.compile(r"not found|does not exist|no such file", re.I)
_UNUSABLE = re.compile(r"nothing usable|no usable|no candidate", re.I)


def _args(cmd: str, pools: list[Path], out: Path, *extra: str) -> list[str]:
    fast = {"ingest": [], "profile": ["--descriptors", "fields", "--text-encoder", "hashing", "--no-progress"],
            "select": ["--preset", "temp"], "run": ["--quiet", "--no-thumbnails"]}[cmd]
    return [cmd, *map(str, pools), "--out", str(out), *fast, *extra]


def _invoke(args: list[str]):
    r = CliRunner().invoke(app, args)
    # a clean exit (typer.Exit / SystemExit), not an exception escaping the command
    assert r.exception is None or isinstance(r.exception, SystemExit), \
        f"gdo {' '.join(args)} raised {r.exception!r}:\n{r.output[-2000:]}"
    return r


def _qa_row(rid: str, image: str | None = None) -> bytes:
    rec = {"id": rid, "messages": [{"role": "user", "content": ("<image>" if image else "") + "What is it?"},
                                   {"role": "assistant", "content": "A thing."}]}
    if image:
        rec["images"] = [image]
    return orjson.dumps(rec)


@pytest.fixture()
def good_pool(tmp_path) -> Path:
    p = tmp_path / "good.jsonl"
    p.write_bytes(b"\n".join(_qa_row(f"r{i}") for i in range(6)) + b"\n")
    return p


# ------------------------------------------------------------------------------- pool paths
@pytest.mark.parametrize("cmd", COMMANDS)
def test_missing_pool_path(cmd, tmp_path):
    missing = tmp_path / "no_such_pool.jsonl"
    r = _invoke(_args(cmd, [missing], tmp_path / "out"))
    assert r.exit_code != 0, f"gdo {cmd} succeeded on a missing pool:\n{r.output}"
    assert "no_such_pool.jsonl" in r.output and _NOT_FOUND.search(r.output), r.output


@pytest.mark.parametrize("cmd", COMMANDS)
def test_pool_with_nothing_usable(cmd, tmp_path):
    """Every line broken (blank, malformed JSON, wrong type, assistant first, truncated tail)."""
    lines = (CORPUS / "pool.jsonl").read_bytes().split(b"\n")
    manifest = json.loads((CORPUS / "manifest.json").read_text())["pool.jsonl"]
    bad = [lines[int(k) - 1] for k, v in sorted(manifest.items(), key=lambda kv: int(kv[0]))
           if v in ("blank_line", "malformed_json", "wrong_type", "assistant_first", "no_pairs", "not_utf8")]
    pool = tmp_path / "broken.jsonl"
    pool.write_bytes(b"\n".join(bad))
    out = tmp_path / "out"
    r = _invoke(_args(cmd, [pool], out))
    assert r.exit_code != 0, f"gdo {cmd} succeeded on a pool with no usable row:\n{r.output}"
    assert _UNUSABLE.search(r.output), r.output
    if (out / "rejects.jsonl").exists():  # where rejects are written, each broken row is one
        rej = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
        assert sorted(x["line"] for x in rej) == list(range(1, len(bad) + 1))
        assert all(x["file"] == str(pool.resolve()) and x["reason"] for x in rej)


# ------------------------------------------------------------------------------- presets and goals
def test_unknown_preset_select(good_pool, tmp_path):
    r = _invoke(["select", str(good_pool), "--preset", "fastest", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown preset" in r.output and "fastest" in r.output
    assert "temp_plus" in r.output  # the message lists the known presets


GOALS = {
    "unknown_key.toml": ('base = "temp"\nmax_ratoi = 0.5\n', ["max_ratoi", "unknown"]),
    "ratio_high.toml": ('base = "temp"\nmax_ratio = 1.5\n', ["max_ratio", "1.5"]),
    "ratio_negative.toml": ('base = "temp"\nmin_video_ratio = -0.1\n', ["min_video_ratio"]),
    "min_above_max.toml": ('base = "temp"\nmin_video_ratio = 0.9\nmax_video_ratio = 0.2\n',
                           ["min_video_ratio", "max_video_ratio"]),
    "count_min_above_max.toml": ('base = "temp"\nmin_count = 50\nmax_count = 10\n', ["min_count", "max_count"]),
    "unknown_key.yaml": ("base: temp\noversampel: 3\n", ["oversampel", "unknown"]),
}


@pytest.mark.parametrize("name", sorted(GOALS))
def test_bad_goal_file_select(name, good_pool, tmp_path):
    text, words = GOALS[name]
    g = tmp_path / name
    g.write_text(text)
    r = _invoke(["select", str(good_pool), "--goal", str(g), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2, r.output
    assert name in r.output, "the message names the goal file"
    for w in words:
        assert w in r.output, (w, r.output)


@pytest.mark.parametrize("name", ["unknown_key.toml", "min_above_max.toml"])
def test_bad_goal_file_run_fails_before_any_stage(name, good_pool, tmp_path):
    text, words = GOALS[name]
    g = tmp_path / name
    g.write_text(text)
    out = tmp_path / "run_out"
    r = _invoke(_args("run", [good_pool], out, "--goal", str(g)))
    assert r.exit_code == 2, r.output
    assert name in r.output and all(w in r.output for w in words), r.output
    # like an unknown preset, a bad goal is caught before ingest/profile spend any time
    assert not (out / "descriptors.parquet").exists() and not (out / "candidates.parquet").exists()


# ------------------------------------------------------------------------------- descriptor files
def _desc_csv(d: Path) -> Path:
    p = d / "descriptors.csv"
    p.write_text("uid,vds\nov::r0::t0,0.1\n")
    return p


def _desc_empty_dir(d: Path) -> Path:
    p = d / "shards"
    p.mkdir()
    (p / "notes.txt").write_text("no shards here")
    return p


def _desc_json_array(d: Path) -> Path:
    p = d / "descriptors.json"
    p.write_text(json.dumps([{"uid": "ov::r0::t0", "vds": 0.1}], indent=1))
    return p


def _desc_no_uid(d: Path) -> Path:
    p = d / "metrics.jsonl"
    p.write_text('{"name": "x", "vds": 0.1}\n{"name": "y", "vds": 0.2}\n')
    return p


@pytest.mark.parametrize("make", [_desc_csv, _desc_empty_dir, _desc_json_array, _desc_no_uid],
                         ids=["csv", "folder_without_shards", "json_array", "jsonl_without_uid"])
def test_descriptor_file_in_unknown_form(make, good_pool, tmp_path):
    d = make(tmp_path)
    out = tmp_path / "o"
    r = _invoke(["select", str(good_pool), "-d", str(d), "--preset", "temp", "--out", str(out)])
    assert r.exit_code == 2, r.output
    assert d.name in r.output, "the message names the descriptor file"
    assert not (out / "selection.jsonl").exists()


# ------------------------------------------------------------------------------- --media-root
@pytest.fixture()
def escaping(tmp_path):
    """root/ok.png inside the media root; ../outside.png and an absolute path escape it."""
    root = tmp_path / "root"
    root.mkdir()
    img = (CORPUS / "media" / "img.png").read_bytes()
    (root / "ok.png").write_bytes(img)
    (tmp_path / "outside.png").write_bytes(img)
    esc = [_qa_row("dotdot", "../outside.png"), _qa_row("abs", str(tmp_path / "outside.png"))]
    only = tmp_path / "escaping.jsonl"
    only.write_bytes(b"\n".join(esc) + b"\n")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(esc + [_qa_row("ok", "ok.png")]) + b"\n")
    return root, only, mixed


@pytest.mark.parametrize("cmd", COMMANDS)
def test_media_root_escapes_leave_nothing_usable(cmd, escaping, tmp_path):
    root, only, _ = escaping
    out = tmp_path / "out"
    r = _invoke(_args(cmd, [only], out, "--media-root", str(root)))
    assert r.exit_code != 0, f"gdo {cmd} succeeded although every row escapes --media-root:\n{r.output}"
    assert _UNUSABLE.search(r.output) or "media_outside_root" in r.output, r.output
    if (out / "rejects.jsonl").exists():
        rej = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
        assert [(x["line"], x["reason"]) for x in rej] == [(1, "media_outside_root"), (2, "media_outside_root")]
        assert "outside.png" in rej[0]["detail"] and "outside.png" in rej[1]["detail"]
        assert all(x["file"] == str(only.resolve()) for x in rej)


def test_media_root_escapes_are_rejects_in_ingest(escaping, tmp_path):
    root, _, mixed = escaping
    out = tmp_path / "ing"
    r = _invoke(_args("ingest", [mixed], out, "--media-root", str(root)))
    assert r.exit_code == 0, r.output
    assert "media_outside_root=2" in r.output
    rej = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert [(x["line"], x["reason"]) for x in rej] == [(1, "media_outside_root"), (2, "media_outside_root")]


def test_media_root_escapes_never_reach_select(escaping, tmp_path):
    """select resolves paths without opening media, yet the confinement still rejects the escapes."""
    root, _, mixed = escaping
    out = tmp_path / "sel"
    r = _invoke(["select", str(mixed), "--media-root", str(root), "--preset", "temp", "--budget", "1",
                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["accounting"]["candidates_in_pool"] == 1 and rep["accounting"]["ingest_rejects"] == 2
    sel = [json.loads(x) for x in (out / "selection.jsonl").read_text().splitlines()]
    assert {s["uid"] for s in sel} == {"ov::ok::t0"}


def test_descriptors_of_another_pool_are_refused(good_pool, tmp_path):
    """A descriptor file whose uids match no candidate (computed on another pool) is an error naming
    both sides, not a silent run where every candidate lacks descriptors."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = tmp_path / "other.parquet"
    pq.write_table(pa.table({"uid": ["ov::elsewhere::t0", "ov::elsewhere::t1"], "vds": [0.1, 0.2]}), d)
    r = _invoke(_args("select", [good_pool], tmp_path / "out", "--descriptors", str(d)))
    assert r.exit_code == 2
    assert "matches none" in r.output and "ov::elsewhere::t0" in r.output and "ov::r0::t0" in r.output
    assert not (tmp_path / "out" / "subset.jsonl").exists()
