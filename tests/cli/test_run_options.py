"""`gdo run` accepts every option of the stages it chains (issue 11 item 2), read from the CLI itself."""

from __future__ import annotations

import typer.main

from gdo.cli import app

#: Options of a single-stage command that make no sense in ``gdo run``, with the reason.
NOT_IN_RUN = {
    "ingest": {"--no-probe": "profile needs the media probed"},
    "profile": {"--progress": "gdo run has --quiet",
                # a cost estimate before profiling (issue 17), not an option of the stage's work:
                "--dry-run": "estimate only", "--gpu": "estimate only", "--gpus": "estimate only",
                "--model-size": "estimate only", "--json": "estimate only"},
    "select": {"--descriptors": "gdo run computes them (its --descriptors names groups, as in profile)",
               "--embeddings": "gdo run profiles the pool and stores them beside its descriptors"},
    "report": {"--candidates": "gdo run writes them into --out", "--descriptors": "idem"},
}


def _flags(cmd) -> set[str]:
    return {o for p in cmd.params for o in p.opts if o.startswith("--")}


def test_run_takes_every_stage_option():
    cmds = typer.main.get_command(app).commands
    run = _flags(cmds["run"])
    for stage in ("ingest", "profile", "select", "report"):
        want = _flags(cmds[stage]) - set(NOT_IN_RUN[stage]) - {"--out"}
        assert want <= run, f"gdo run lacks {stage} options {sorted(want - run)}"
    for f in ("--device", "--batch-size", "--model-frames", "--trust-remote-code"):  # the README's GPU recipe
        assert f in run


def test_run_forwards_profile_options(tmp_path, monkeypatch):
    """The options reach profile() (no _call filtering): recorded from the stage layer's call."""
    import gdo.stages as stages

    seen = {}

    class Stop(Exception):
        pass

    def fake_profile_stage(cands, out_dir, cfg):
        seen.update(cfg.profile_kwargs())
        raise Stop

    monkeypatch.setattr(stages, "profile_stage", fake_profile_stage)
    from typer.testing import CliRunner

    pool = tmp_path / "p.jsonl"
    pool.write_text('{"id": "a", "conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]}\n')
    r = CliRunner().invoke(app, ["run", str(pool), "--out", str(tmp_path / "o"), "--device", "cpu", "--batch-size",
                                 "3", "--model-frames", "4", "--trust-remote-code", "--k", "5", "--text-encoder",
                                 "hashing", "--descriptors", "fields,dedup", "--quiet"])
    assert isinstance(r.exception, Stop), r.output
    assert (seen["device"], seen["model_batch_size"], seen["model_frames"], seen["trust_remote_code"], seen["k"],
            seen["text_encoder"], seen["descriptors"]) == ("cpu", 3, 4, True, 5, "hashing", ["fields", "dedup"])


def test_run_refuses_preset_and_goal_together(tmp_path):
    from typer.testing import CliRunner

    g = tmp_path / "g.toml"
    g.write_text('base = "temp"\n')
    r = CliRunner().invoke(app, ["run", str(g), "--out", str(tmp_path / "o"), "--preset", "temp", "--goal", str(g)])
    assert r.exit_code == 2 and "exactly one of --preset and --goal" in r.output
