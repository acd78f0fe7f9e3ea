"""The Ray engine (issue 17): descriptors.parquet byte-identical to the local engine's (recorded
from the pre-registry code in tests/data/profile_golden) for 1 and 2 Ray workers, after a Ray
worker is killed mid-run, and when a run killed on the local engine is finished on Ray; a shard
that keeps failing is recorded and the rest of the run is stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _profile_pools import CASES

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "profile_golden"


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray for the module: 2 CPUs, 128 MB object store, no dashboard."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, object_store_memory=128 * 1024 * 1024, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    yield
    ray.shutdown()


def _golden(name: str) -> bytes:
    return (GOLDEN / f"{name}.parquet").read_bytes()


def _run(name: str, real: Path, out: Path, *, tiny=None, **over):
    from gdo.descriptors.profile import profile

    builder, kw = CASES[name]
    kw = {**kw, **over}
    if tiny is not None:
        kw["model"] = tiny
    return profile(builder(real), out, **kw)


@pytest.mark.parametrize("workers", [1, 2])
def test_ray_identical_to_local(local_ray, real_data, tmp_path, workers):
    _run("real_hashing_nocluster", real_data, tmp_path / "o", engine="ray", workers=workers)
    assert (tmp_path / "o" / "descriptors.parquet").read_bytes() == _golden("real_hashing_nocluster")
    cost = __import__("json").loads((tmp_path / "o" / "cost.json").read_text())["profile"]
    assert cost["media"]["engine"] == "ray" and cost["media"]["shards_computed"] == cost["media"]["shards"] == 4


def test_ray_model_actors_identical(local_ray, real_data, tiny_model, tmp_path):
    """Tiny VLM and MiniLM in actor pools (one model load per actor), 2 workers."""
    _run("model_tiny", real_data, tmp_path / "o", tiny=tiny_model, engine="ray", workers=2)
    assert (tmp_path / "o" / "descriptors.parquet").read_bytes() == _golden("model_tiny")


def _ray_workers_busy() -> list[int]:
    """PIDs of Ray worker processes below this process that are running a Ray Data task."""
    me = os.getpid()
    parent: dict[int, int] = {}
    title: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            parent[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            title[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue

    def below_me(pid: int) -> bool:
        seen = 0
        while pid in parent and seen < 64:
            pid = parent[pid]
            if pid == me:
                return True
            seen += 1
        return False

    return [p for p, t in title.items() if t.startswith("ray::") and "MapBatches" in t and below_me(p)]


def test_ray_worker_killed_mid_run_then_identical(local_ray, real_data, tmp_path):
    out = tmp_path / "o"
    killed: list[int] = []

    def killer():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            done = list((out / ".gdo" / "shards" / "media").rglob("*.done.json")) if out.exists() else []
            if done:
                for pid in _ray_workers_busy()[:1]:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.02)

    th = threading.Thread(target=killer, daemon=True)
    th.start()
    # one media item per shard: several shards, so a worker is busy after the first finished
    _run("real_hashing_nocluster", real_data, out, engine="ray", workers=2,
         shard_sizes={"media": 1, "text": 4})
    th.join(timeout=5)
    assert killed, "no busy Ray worker was found to kill"
    assert (out / "descriptors.parquet").read_bytes() == _golden("real_hashing_nocluster")


def test_local_run_killed_then_finished_on_ray(local_ray, real_data, tmp_path):
    """A local-engine run SIGKILLed after its first media shard resumes on Ray: identical output,
    finished shards reused."""
    import pyarrow.parquet as pq

    builder, kw = CASES["real_hashing_nocluster"]
    cands = tmp_path / "candidates.parquet"
    pq.write_table(builder(real_data), cands)
    out = tmp_path / "o"
    sizes = {"media": 1, "text": 4}
    code = ("from gdo.descriptors.profile import profile; "
            f"profile({str(cands)!r}, {str(out)!r}, shard_sizes={sizes!r}, text_encoder='hashing', "
            f"descriptors={kw['descriptors']!r})")
    p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and p.poll() is None:
            if list((out / ".gdo" / "shards" / "media").rglob("*.done.json")) if out.exists() else []:
                break
            time.sleep(0.02)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    before = {m.name for m in (out / ".gdo" / "shards").rglob("*.done.json")}
    assert before and not (out / "descriptors.parquet").exists(), p.stderr.read().decode()[-2000:]
    from gdo.descriptors.profile import profile

    profile(str(cands), out, engine="ray", workers=2, shard_sizes=sizes, text_encoder="hashing",
            descriptors=kw["descriptors"])
    assert (out / "descriptors.parquet").read_bytes() == _golden("real_hashing_nocluster")
    cost = __import__("json").loads((out / "cost.json").read_text())["profile"]
    assert cost["media"]["shards_reused"] >= 1


def test_failing_shard_recorded_rest_stored(local_ray, real_data, tmp_path):
    """A text encoder folder that is no model fails every text shard 3 times: each is recorded
    with its error, the media shards are stored, the run raises ShardsFailedError saying so."""
    from gdo.descriptors.profile import ShardsFailedError

    bad = tmp_path / "not_a_model"
    bad.mkdir()
    (bad / "README").write_text("no weights here")
    with pytest.raises(ShardsFailedError, match=r"3 shard\(s\) failed 3 times") as ei:
        _run("real_default", real_data, tmp_path / "o", engine="ray", workers=2, text_encoder=str(bad))
    assert "text/" in str(ei.value)
    failed = list((tmp_path / "o" / ".gdo" / "shards" / "text").rglob("*.failed.json"))
    assert len(failed) == 3
    media_done = list((tmp_path / "o" / ".gdo" / "shards" / "media").rglob("*.done.json"))
    assert len(media_done) == 4
    assert not (tmp_path / "o" / "descriptors.parquet").exists()
