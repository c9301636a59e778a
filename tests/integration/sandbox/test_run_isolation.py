"""Property 1 of issue 13: nothing a run does reaches outside it, even across the tests of one run.

Each test asserts the verdict and the effect on the host (files in /dev, values in /proc/sys, a host
process, what a later run can find in its own memory), then that the servers survived and left nothing
behind (Aftermath.check).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandbox_helpers import ASSERT_ADD, probe, require, run, summary

# A probe that scans its own process's memory (every readable anonymous mapping and the heap, read with ctypes;
# file mappings hold code, not data a judge received) for secrets.
# It holds each secret only with every byte shifted by one and shifts what it reads the same way, so neither
# its own needle nor its copies of memory can match: a hit means the secret is in the process's memory.
MEMORY_SCAN = (
    "import ctypes\n"
    "SHIFT = bytes((b + 1) % 256 for b in range(256))\n"
    "def _found(needles):\n"
    "    hits = set()\n"
    "    with open('/proc/self/maps') as f:\n"
    "        regions = [line.split() for line in f]\n"
    "    for r in regions:\n"
    "        lo, hi = (int(x, 16) for x in r[0].split('-'))\n"
    "        if 'r' not in r[1] or hi - lo > 1 << 29 or (len(r) > 5 and r[5] not in ('[heap]', '[stack]')):\n"
    "            continue\n"
    "        for start in range(lo, hi, 1 << 22):\n"
    "            end = min(start + (1 << 22) + 64, hi)\n"
    "            chunk = ctypes.string_at(start, end - start).translate(SHIFT)\n"
    "            for name, needle in needles.items():\n"
    "                if needle in chunk:\n"
    "                    hits.add(name)\n"
    "    return ':'.join(sorted(hits)) or 'none'\n"
)


def shifted(secret: str) -> bytes:
    return bytes((b + 1) % 256 for b in secret.encode())


def test_symlinks_planted_in_the_run_dir_lead_nowhere_on_the_host(executor, after):
    """Test 0 of a stdio run replaces every file name a judge might open in its directory with links to
    the host's /dev (devtmpfs, shared with the host); test 1 runs after it. Nothing appears in /dev."""
    token = secrets.token_hex(6)
    names = ["stdout.txt", "stderr.txt", "stdin.txt"] + [f"{k}{i}.txt" for k in ("in", "out", "err") for i in range(4)]
    program = (
        "import os\n"
        f"for n in {names!r}:\n"
        "    try:\n"
        "        os.unlink(n)\n"
        "    except OSError:\n"
        "        pass\n"
        f"    os.symlink('/dev/coderl-adv-{token}-' + n, n)\n"
        "print('wrong')\n"
    )
    res = run(executor, program, {"type": "stdio", "inputs": ["1\n"] * 3, "outputs": ["1\n"] * 3})
    assert res.outcome == "failed_test" and res.tests == ["failed_test"] * 3, res
    assert [e for e in os.listdir("/dev") if token in e] == []
    after.check()


def test_each_stdio_test_starts_in_a_clean_run_directory(executor, after):
    """What one test leaves in its directory and in /tmp is gone when the next test of the same run starts."""
    program = (
        "import os\n"
        "left = ['left-behind', 'dir-left-behind', '/tmp/tmp-left-behind']\n"
        "seen = [p for p in left if os.path.lexists(p)] + sorted(os.listdir('.'))\n"
        "open(left[0], 'w').write('x')\n"
        "os.mkdir(left[1])\n"
        "open(left[2], 'w').write('x')\n"
        "print('clean' if not seen else ' '.join(seen))\n"
    )
    res = executor.run_one(program, {"type": "stdio", "inputs": ["\n"] * 3, "outputs": ["clean\n"] * 3})
    assert res.outcome == "passed", res
    after.check()


def test_dev_proc_and_sys_are_not_writable(executor, after):
    require(executor, "private /proc, /dev, /sys")
    token = secrets.token_hex(6)
    watched = "/proc/sys/kernel/domainname"
    before = Path(watched).read_text()
    dev_before = set(os.listdir("/dev"))
    body = (
        "import os, stat\n"
        "res = []\n"
        f"res.append('devfile.' + _try(lambda: open('/dev/coderl-adv-{token}', 'w')))\n"
        f"res.append('mknod.' + _try(lambda: os.mknod('/dev/coderl-adv-{token}-n', stat.S_IFCHR | 0o666, "
        "os.makedev(1, 3))))\n"
        f"res.append('procsys.' + _try(lambda: open({watched!r}, 'w').write('pwned')))\n"
        "res.append('procself.' + _try(lambda: open('/proc/self/oom_score_adj', 'w').write('1000')))\n"
        "res.append('sysfs.' + _try(lambda: open('/sys/kernel/mm/transparent_hugepage/enabled', 'w').write('x')))\n"
        f"res.append('cgroup.' + _try(lambda: os.mkdir('/sys/fs/cgroup/coderl-adv-{token}')))\n"
        "extra = sorted(set(os.listdir('/dev')) - {'null', 'zero', 'full', 'random', 'urandom', 'shm', 'fd', "
        "'stdin', 'stdout', 'stderr'})\n"
        "res.append('devlist.' + ('_'.join(extra) or 'minimal'))\n"
        "_r(':'.join(res))\n"
    )
    seen = dict(x.split(".", 1) for x in summary(run(executor, probe(body), ASSERT_ADD)).split(":"))
    assert seen.pop("devlist") == "minimal", "the run sees more of /dev than the minimal set"
    assert all(v != "ok" for v in seen.values()), seen
    assert Path(watched).read_text() == before
    assert set(os.listdir("/dev")) - dev_before == set()
    assert not any(token in e for e in os.listdir("/sys/fs/cgroup"))
    after.check()


@pytest.fixture
def host_process_with_secret():
    secret = "hostsecret" + secrets.token_hex(8)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", secret])
    try:
        yield proc.pid, secret
    finally:
        proc.kill()
        proc.wait()


def test_a_run_sees_no_host_process(executor, after, host_process_with_secret):
    require(executor, "pid namespace")
    pid, secret = host_process_with_secret
    body = (
        "import os\n"
        "pids = sorted(p for p in os.listdir('/proc') if p.isdigit())\n"
        "found = 'none'\n"
        "for p in pids:\n"
        "    try:\n"
        "        if SECRET in open('/proc/' + p + '/cmdline', 'rb').read().translate(SHIFT):\n"
        "            found = p\n"
        "    except OSError:\n"
        "        pass\n"
        f"host = _try(lambda: open('/proc/{pid}/cmdline', 'rb').read())\n"
        "_r('pids.' + '_'.join(pids) + ':me.' + str(os.getpid()) + ':found.' + found + ':host.' + host)\n"
    )
    program = probe(f"SHIFT = bytes((b + 1) % 256 for b in range(256))\nSECRET = {shifted(secret)!r}\n" + body)
    seen = dict(x.split(".", 1) for x in summary(run(executor, program, ASSERT_ADD)).split(":"))
    assert seen["found"] == "none", "a host process's command line was readable from the run"
    assert set(seen["pids"].split("_")) <= {"1", seen["me"]}, f"the run sees other processes: {seen['pids']}"
    assert seen["host"] != "ok"
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[3].decode() == secret  # still running, unharmed
    after.check()


def _leaky_runs(secret: dict[str, str]) -> list[dict]:
    """Runs that put each secret where a judge holds it: in a program, in assert test code (an expected value),
    in the expected outputs of call and stdio tests, and in a return value."""
    prog = f"SECRET_PROGRAM = {secret['program']!r}\ndef f(x):\n    return {secret['returned']!r}\n"
    return [
        {"program": prog, "tests": {"type": "assert", "setup": f"EXPECTED = {secret['setup']!r}",
                                    "asserts": [f"assert f(1) == {secret['assert']!r}", "assert f(2) == EXPECTED"]}},
        {"program": prog, "tests": {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [secret["call"]]}},
        {"program": "print(input())", "tests": {"type": "stdio", "inputs": ["x\n"], "outputs": [secret["stdio"]]}},
    ]


def test_a_run_cannot_find_earlier_runs_in_its_memory(executor, after):
    require(executor, "clean process image")
    secret = {k: f"cdrl{k}{secrets.token_hex(8)}" for k in ("program", "returned", "setup", "assert", "call",
                                                             "stdio")}
    runs = _leaky_runs(secret) * 2  # twice, so that every worker (most likely) holds them
    results = executor.run([{"id": f"leak{i}", **r} for i, r in enumerate(runs)])
    assert all(not r.passed for r in results)
    needles = {k: shifted(v) for k, v in secret.items()}
    scan = probe(MEMORY_SCAN + f"NEEDLES = {needles!r}\n_r('found.' + _found(NEEDLES))\n")
    results = executor.run([{"id": f"scan{i}", "program": scan, "tests": ASSERT_ADD, "timeout": 30.0}
                            for i in range(4)])
    assert {summary(r) for r in results} == {"found.none"}, "a run found data of earlier runs in its memory"
    after.check()


def test_a_run_cannot_find_its_own_expected_values_in_its_memory(executor, after):
    """While the program answers a test, nothing of the tests but the arguments is in its process."""
    expected = {k: f"cdrl{k}{secrets.token_hex(8)}" for k in ("setup", "assert", "call")}
    needles = {k: shifted(v) for k, v in expected.items()}
    program = probe(MEMORY_SCAN + f"NEEDLES = {needles!r}\ndef f(x):\n    _r('found.' + _found(NEEDLES))\n")
    for tests in ({"type": "assert", "setup": f"EXPECTED = {expected['setup']!r}",
                   "asserts": [f"assert f(1) == {expected['assert']!r} or f(2) == EXPECTED"]},
                  {"type": "call", "fn_name": "f", "inputs": [[1]], "outputs": [expected["call"]]}):
        res = run(executor, program, tests, timeout=30.0)
        assert summary(res) == "found.none", f"the program found its tests' expected values ({tests['type']})"
    after.check()


def test_a_background_thread_dies_with_its_run(executor, after, sandbox_uids):
    """A thread that outlives the answers is gone before the next run (no process of the sandbox uid)."""
    program = ("import threading, time\n"
               "def spin():\n    while True:\n        time.sleep(0.001)\n"
               "threading.Thread(target=spin, daemon=False).start()\n"
               "def add(a, b):\n    return a + b\n")
    t0 = time.monotonic()
    res = executor.run_one(program, ASSERT_ADD)
    assert res.outcome == "passed" and time.monotonic() - t0 < 5, res  # a correct program, threads and all
    after.check()  # includes: no process of the sandbox uids is left


def test_a_run_cannot_leave_its_workers_cpu(executor, after):
    """Runs are pinned to their worker's CPU; moving to another would take time from the runs judged there."""
    require(executor, "seccomp")
    body = ("import os\n"
            "res = 'move.' + _try(lambda: os.sched_setaffinity(0, set(range(os.cpu_count() or 1))))\n"
            "_r(res + ':cpus.' + str(len(os.sched_getaffinity(0))))\n")
    seen = dict(x.split(".") for x in summary(run(executor, probe(body), ASSERT_ADD)).split(":"))
    assert seen["move"] == "PermissionError"
    assert seen["cpus"] == "1" or len(os.sched_getaffinity(0)) == 1
    after.check()
