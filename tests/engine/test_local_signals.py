"""Stopping a run from outside: SIGTERM to ``gdo profile`` cleans up as Ctrl-C does, and the local
engine's pool workers do not outlive a driver killed with ``kill -9``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_die_with_a_killed_driver(tmp_path):
    script = (f"import sys, time\nsys.path.insert(0, {SRC!r})\n"
              "from gdo.engine.local import run_tasks\n"
              "for i, r in run_tasks(time.sleep, [5.0] * 8, workers=2):\n    pass\n")
    driver = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 60
        workers: list[int] = []
        while time.time() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = [c for c in _children(driver.pid) if _alive(c)]
        assert len(workers) >= 2, "the pool did not start"
        time.sleep(0.5)  # the workers are inside their first task
        driver.kill()
        driver.wait(timeout=30)
        deadline = time.time() + 20
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        left = [w for w in workers if _alive(w)]
        assert not left, f"pool workers {left} outlived the killed driver"
    finally:
        if driver.poll() is None:
            driver.kill()
        for w in _children(driver.pid):
            try:
                os.kill(w, signal.SIGKILL)
            except OSError:
                pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals")
def test_sigterm_ends_profile_with_its_scratch_removed(real_data, tmp_path):
    """``kill`` (SIGTERM) during the media stage: exit status 143, no scratch folder left, the
    finished shards kept; the same command then finishes the run."""
    clips = sorted(p for p in real_data.rglob("*.mp4") if p.stat().st_size > 20_000)[:12]
    pool = tmp_path / "pool.jsonl"
    with open(pool, "w") as f:
        for i, c in enumerate(clips):
            f.write(json.dumps({"id": f"v{i}", "video": str(c), "conversations": [
                {"from": "human", "value": "<video>\nWhat happens?"}, {"from": "gpt", "value": f"Thing {i}."}]}) + "\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gdo", "profile", str(pool), "--out", str(out), "--text-encoder", "hashing",
           "--descriptors", "fields,motion", "--no-progress", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    work = out / ".gdo" / "work"
    deadline = time.time() + 120
    while time.time() < deadline and not (work.exists() and any(work.iterdir())) and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, "profile ended before it could be stopped: " + proc.communicate()[1][-2000:]
    time.sleep(1.0)  # inside the media stage
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("profile finished before SIGTERM arrived")
    assert proc.returncode == 143, err[-2000:]
    assert not work.exists() or not any(work.iterdir()), list(work.iterdir())
    assert not (out / "descriptors.parquet").exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "descriptors.parquet").exists() and not work.exists()


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_pool_runs_under_every_start_method(method, monkeypatch):
    """The workers' initializer (death signal tied to the process that started them: the driver,
    or the fork server) lets every ``GDO_MP_START`` method run its tasks."""
    import math
    import multiprocessing as mp

    from gdo.engine.local import run_tasks

    if method not in mp.get_all_start_methods():
        pytest.skip(f"{method} not available here")
    monkeypatch.setenv("GDO_MP_START", method)
    got = dict(run_tasks(math.sqrt, [4.0, 9.0, 16.0, 25.0, 36.0], workers=2))
    assert got == {0: 2.0, 1: 3.0, 2: 4.0, 3: 5.0, 4: 6.0}
