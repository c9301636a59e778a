"""What the adversarial sandbox tests share: well-behaved programs, probes that report from inside, and the
checks of what a run leaves behind (imported by the test modules of this folder; see conftest.py)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import psutil
import pytest

from coderl.sandbox import Executor, Result

GOOD_PROGRAM = "def add(a, b):\n    return a + b\n"
ASSERT_ADD = {"type": "assert", "asserts": ["assert add(2, 3) == 5", "assert add(-1, 1) == 0"]}
GOOD_STDIO = "a, b = map(int, input().split())\nprint(a + b)\n"
STDIO_ADD = {"type": "stdio", "inputs": ["2 3\n", "10 -4\n"], "outputs": ["5\n", "6\n"]}
CALL_ADD = {"type": "call", "fn_name": "add", "inputs": [[2, 3], [-1, 1]], "outputs": [5, 0]}
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")

# Prepended to probe programs: `_r("summary")` ends the program with a verdict whose detail is R_summary.
REPORT_PRELUDE = (
    "def _r(summary):\n"
    "    raise type('R_' + summary, (Exception,), {})()\n"
    "def _try(fn):\n"
    "    try:\n"
    "        fn()\n"
    "        return 'ok'\n"
    "    except BaseException as e:\n"
    "        return type(e).__name__\n"
)


def probe(body: str) -> str:
    return REPORT_PRELUDE + body


def summary(res: Result) -> str:
    assert res.outcome == "runtime_error" and res.detail.startswith("R_"), f"probe did not report: {res}"
    return res.detail[2:]


def require(ex: Executor, *names: str) -> None:
    """Skip (never silently pass) when a protection the property relies on is missing."""
    active, missing = ex.protections()
    for name in names:
        if name not in active:
            pytest.skip(f"protection {name!r} is missing: {missing.get(name, 'not reported by the server')}")


def require_any(ex: Executor, *names: str) -> None:
    active, missing = ex.protections()
    if not any(n in active for n in names):
        pytest.skip("none of the protections " + ", ".join(f"{n!r} ({missing.get(n, '?')})" for n in names)
                    + " is active")


# -- what is left behind ----------------------------------------------------------------------------------

def server_pids(ex: Executor) -> list[int | None]:
    return [w.proc.pid if w.proc is not None else None for w in ex._pool]


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def sandbox_processes(uids: range) -> list[str]:
    out = []
    for p in psutil.process_iter(["pid", "uids", "name"]):
        u = p.info["uids"]
        if u is not None and any(x in uids for x in (u.real, u.effective, u.saved)):
            out.append(f"{p.info['pid']}:{p.info['name']}:uid{u.real}")
    return out


def sysv_ipc_objects(uids: range) -> list[tuple[str, int]]:
    """(kind, id) of SysV shared memory segments, semaphore sets and message queues owned by ``uids``."""
    found = []
    for kind in ("shm", "sem", "msg"):
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        if not lines:
            continue
        head = lines[0].split()
        i_id = head.index({"shm": "shmid", "sem": "semid", "msg": "msqid"}[kind])
        i_uid, i_cuid = head.index("uid"), head.index("cuid")
        for line in lines[1:]:
            cols = line.split()
            if int(cols[i_uid]) in uids or int(cols[i_cuid]) in uids:
                found.append((kind, int(cols[i_id])))
    return found


def remove_sysv_ipc(objs: list[tuple[str, int]]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    ipc_rmid = 0
    for kind, ident in objs:
        if kind == "shm":
            libc.shmctl(ident, ipc_rmid, None)
        elif kind == "sem":
            libc.semctl(ident, 0, ipc_rmid)
        else:
            libc.msgctl(ident, ipc_rmid, None)


def owned_entries(uids: range) -> set[str]:
    out = set()
    for d in SHARED_WRITABLE:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                if e.stat(follow_symlinks=False).st_uid in uids:
                    out.add(e.path)
            except OSError:
                pass
    return out


class Aftermath:
    """Snapshot before the adversarial run; ``check()`` asserts survival (b) and cleanliness (c)."""

    def __init__(self, ex: Executor, uids: range):
        self.ex, self.uids = ex, uids
        self.pids = server_pids(ex)
        assert all(alive(p) for p in self.pids), f"servers not alive before the test: {self.pids}"
        self.entries = owned_entries(uids)
        self.ipc = sysv_ipc_objects(uids)

    def check(self) -> None:
        ex = self.ex
        # (b) the executor and its servers survived: same processes, not restarted, not zombies.
        now = server_pids(ex)
        assert now == self.pids, f"fork servers were replaced: {self.pids} -> {now}"
        assert all(alive(p) for p in now), f"a fork server died: {now}"
        # (c) nothing owned by the sandbox uids is left running, in SysV IPC, or in the shared tmp dirs.
        assert sandbox_processes(self.uids) == [], "processes left behind by the sandboxed program"
        assert sysv_ipc_objects(self.uids) == self.ipc, "SysV IPC objects left behind by the sandboxed program"
        assert owned_entries(self.uids) - self.entries == set(), "host tmp entries left behind"
        # (b) the next correct programs, on every worker, still pass.
        reqs = [{"id": f"next{i}", "program": prog, "tests": spec}
                for i, (prog, spec) in enumerate([(GOOD_PROGRAM, ASSERT_ADD), (GOOD_STDIO, STDIO_ADD),
                                                  (GOOD_PROGRAM, CALL_ADD), (GOOD_PROGRAM, ASSERT_ADD)])]
        results = ex.run(reqs)
        assert [r.outcome for r in results] == ["passed"] * 4, results
        assert server_pids(ex) == self.pids, "a fork server was restarted while running correct programs"
        assert sandbox_processes(self.uids) == []


def run(ex: Executor, program: str, tests: dict, timeout: float | None = None) -> Result:
    res = ex.run_one(program, tests, timeout=timeout)
    assert res.outcome != "passed", f"adversarial program passed: {res}"
    return res


def rootfs_dir() -> str:
    """A directory on the host's root file system, outside the tmpfs-covered ones."""
    for d in ("/srv", "/opt", "/var/lib", "/mnt"):
        if os.path.isdir(d) and not os.path.ismount(d):
            return d
    return "/"
