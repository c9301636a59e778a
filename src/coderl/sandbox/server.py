"""The fork server: one per executor worker, started with ``python -m coderl.sandbox.server CONFIG``.

It sets up namespaces once, pre-imports the modules programs commonly use (so a child starts warm in
about a millisecond), then for every job forks a child per run, confines it, and watches it with
parent-side deadlines. It speaks newline-delimited JSON with the executor on two private descriptors.
What it returns are observations (what the program printed, returned or raised); the executor judges them.
"""

from __future__ import annotations

import gc
import json
import os
import select
import shutil
import signal
import stat
import sys
import time
import types
from typing import Any

from coderl.sandbox import harness, isolation, seccomp

PRELOAD = (
    "numpy", "math", "cmath", "collections", "itertools", "functools", "heapq", "bisect", "re", "string",
    "random", "fractions", "decimal", "statistics", "typing", "datetime", "copy", "operator", "json",
    "array", "dataclasses", "enum", "hashlib", "textwrap", "unicodedata",
)
# Not preloaded: threading (and queue, which imports it) registers an after-fork handler that costs every child
# ~130 copied pages; the few programs that use them import them in a millisecond or two.

SANDBOX_FAULT = 70  # exit status of a child whose confinement failed before the program started


class Server:
    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.pid = os.getpid()
        self.prot = isolation.Protections()
        self.base = cfg["base_dir"]
        self.run_dir = os.path.join(self.base, "run")  # every run's directory, the same path each time
        self.uid: int | None = None
        self.use_seccomp = False
        self._seccomp: seccomp.Prepared | None = None
        self.private_fs = False
        self._test_cache: dict[tuple, Any] = {}

    # -- set-up ---------------------------------------------------------------------------------------
    def setup(self) -> None:
        # No PDEATHSIG for the server itself: it fires when the *thread* that started the server exits, and
        # executors restart servers from worker threads. The server exits when its job pipe closes instead.
        self.prot.ok("parent-death signal", "each run gets SIGKILL if its server dies; a server exits when its "
                                            "executor's pipe closes")
        if self.cfg.get("isolate", True):
            expose = [p for p in sys.path if p] + [sys.prefix, sys.base_prefix, sys.exec_prefix]
            isolation.setup_server(self.prot, self.base, self.cfg["tmpfs_mb"], expose)
        else:
            self.prot.fail("network namespace", "disabled by configuration")
            self.prot.fail("private filesystem", "disabled by configuration")
            os.makedirs(self.base, exist_ok=True)
        self.private_fs = "private filesystem" in self.prot.active
        if os.getuid() == 0 and self.cfg.get("uid") is not None:
            self.uid = int(self.cfg["uid"])
            self.prot.ok("dedicated uid", f"programs run as uid {self.uid} with no groups; RLIMIT_NPROC applies")
        else:
            self.prot.fail("dedicated uid", "not root, or disabled: programs run as the caller's uid")
        if self.cfg.get("seccomp", True) and seccomp.supported():
            self.use_seccomp = self._probe_seccomp()
            if self.use_seccomp:
                self.prot.ok("seccomp", "no_new_privs + filter: no new processes, exec, signals to others, "
                                        "sockets (socketpair only), SysV IPC, ptrace, mounts/namespaces, bpf, "
                                        "io_uring")
            else:
                self.prot.fail("seccomp", "the kernel refused the filter")
        else:
            self.prot.fail("seccomp", f"not available for {os.uname().machine} or disabled")
        self.prot.ok("rlimits", f"address space {self.cfg['memory_mb']} MB, CPU time, file size "
                                f"{self.cfg['output_mb']} MB, 256 open files, no core dumps")
        self.prot.ok("session + deadlines", "each run in its own session and process group, killed by the "
                                            "server at the deadline (no SIGALRM inside the program)")
        self.prot.ok("scrubbed environment", "children see only PATH, LANG and thread-count variables")
        self.prot.ok("result channel", "per-run random token on a private pipe; stdio/call outputs are judged "
                                       "by the executor, which alone knows the expected values")
        for mod in self.cfg.get("preload", PRELOAD):
            try:
                __import__(mod)
            except ImportError:
                pass
        if self.use_seccomp:
            self._seccomp = seccomp.Prepared()
        # What every child needs and the server does not mind, set once here instead of in each child (where
        # it cost a few hundred microseconds and ~120 copied pages): default signal dispositions (over-long
        # output then raises OSError(EFBIG) instead of SIGXFSZ), and the scrubbed environment with HOME and
        # TMPDIR at the run directory, which is the same path for every run.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        os.environ.clear()
        os.environ.update(isolation.CHILD_ENV, HOME=self.run_dir, TMPDIR=self.run_dir)
        harness.prepare_std_streams()
        # The harness keeps its own references; without the modules in sys.modules a program cannot import the
        # running harness by name (a speed bump, not a boundary: see docs/execution.md). Done once here rather
        # than in every child, where deleting the entries cost a few hundred copied pages per run.
        for name in [m for m in sys.modules if m == "coderl" or m.startswith("coderl.")]:
            del sys.modules[name]
        sys.modules["__main__"] = types.ModuleType("__main__")  # this module, with the server, otherwise
        # Objects that exist now are never collected: a child's garbage collector then does not touch (and
        # copy) every page it inherited, which would make each run pay for the whole server heap.
        gc.collect()
        gc.freeze()

    def _probe_seccomp(self) -> bool:
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                seccomp.install(os.getpid())
                try:
                    p = os.fork()
                    if p == 0:
                        os._exit(0)
                    code = 2  # fork still works: filter ineffective
                except PermissionError:
                    code = 0
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) == 0

    # -- one run ----------------------------------------------------------------------------------------
    def _rundir(self) -> str:
        d = self.run_dir
        if os.path.lexists(d):
            shutil.rmtree(d, ignore_errors=True)
        os.mkdir(d, 0o700)
        if self.uid is not None:
            os.chown(d, self.uid, self.uid)
        return d

    def _child(self, job: dict, mode: str, index: int, wfd: int, token: str, rundir: str) -> None:
        code = 0
        try:
            os.setsid()
            isolation.set_pdeathsig(signal.SIGKILL)
            if os.getppid() != self.pid:
                os._exit(1)
            os.chdir(rundir)
            fd0 = os.open(os.devnull, os.O_RDONLY)
            fd1 = os.open("stdout.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fd2 = os.open("stderr.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd0, 0)
            os.dup2(fd1, 1)
            os.dup2(fd2, 2)
            if wfd != 3:
                os.dup2(wfd, 3)
            os.closerange(4, 1 << 16)
            n = max(1, len(job["tests"].get("asserts") or job["tests"].get("inputs") or []))
            cpu = int(job["timeout"] * (n + 2)) + 1
            isolation.setup_child_limits(self.cfg["memory_mb"], cpu, self.cfg["output_mb"], 256,
                                         64 if self.uid is not None else None)
            if self.uid is not None:
                isolation.drop_privileges(self.uid)
            if self._seccomp is not None:
                self._seccomp.install(os.getpid())
            harness.fresh_std_streams(prepared=True)
            report = harness.Reporter(3, token)
            if mode == "stdio":
                harness.run_stdio(job, index, report)
            elif mode == "call":
                harness.run_call(job, report)
            else:
                harness.run_assert(job, report)
            report("done")
        except BaseException as e:
            code = SANDBOX_FAULT
            try:
                os.write(2, f"coderl sandbox set-up failed: {type(e).__name__}: {e}\n".encode())
            except OSError:
                pass
        finally:
            os._exit(code)

    def run_child(self, job: dict, mode: str, index: int = -1, keep_dir: bool = False) -> dict[str, Any]:
        """Fork one confined child for ``job`` and watch it. For stdio, ``index`` is the first test to run
        and the run directory (with its in/out files) is kept for the caller to read and clean."""
        rundir = self.run_dir if keep_dir and mode == "stdio" and index > 0 else self._rundir()
        if mode == "stdio" and index == 0:
            for i, text in enumerate(job["tests"]["inputs"]):
                with open(os.path.join(rundir, f"in{i}.txt"), "w", encoding="utf-8") as f:
                    f.write(text)
        token = os.urandom(16).hex()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            self._child(job, mode, index, w, token, rundir)
        os.close(w)
        obs = self._watch(pid, r, token, job)
        os.close(r)
        obs["stderr_tail"] = self._read_capped(os.path.join(rundir, "stderr.txt"), tail=2000)
        if not keep_dir:
            self._cleanup(rundir)
        return obs

    def _read_capped(self, path: str, tail: int | None = None) -> str:
        """Read a file the program may have replaced: never follow a symlink, never block on a FIFO, and read
        only regular files (anything else counts as no output)."""
        cap = self.cfg["output_mb"] * 1024 * 1024
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return ""
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                return ""
            with os.fdopen(fd, "rb") as f:
                if tail is not None:
                    size = os.fstat(f.fileno()).st_size
                    f.seek(max(0, size - tail))
                    data = f.read(tail)
                else:
                    data = f.read(cap)
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    def _cleanup(self, rundir: str) -> None:
        shutil.rmtree(rundir, ignore_errors=True)
        if self.uid is not None and not self.use_seccomp:
            isolation.kill_uid(self.uid)
        if self.private_fs:
            base_top = self.base.split("/")
            for d in isolation.SHARED_WRITABLE:
                keep = base_top[2] if len(base_top) > 2 and "/" + base_top[1] == d else None
                isolation.clean_dir(d, keep=keep)

    def _watch(self, pid: int, r: int, token: str, job: dict) -> dict[str, Any]:
        """Read records until the child ends; enforce deadlines; kill the whole process group at the end."""
        timeout = float(job["timeout"])
        n = max(1, len(job["tests"].get("asserts") or job["tests"].get("inputs") or []))
        t0 = time.monotonic()
        hard_stop = t0 + timeout * (n + 2) + 1.0
        deadline = t0 + timeout
        records: list[tuple[str, int, int | None, str, str]] = []
        buf = b""
        killed_for: str | None = None
        max_bytes = self.cfg["output_mb"] * 1024 * 1024 + 65536
        total = 0
        while True:
            now = time.monotonic()
            limit = min(deadline, hard_stop)
            if now >= limit:
                killed_for = "timeout"
                break
            ready, _, _ = select.select([r], [], [], limit - now)
            if not ready:
                continue
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                killed_for = "output_limit"
                break
            buf += chunk
            bad = False
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                head = buf[:nl].split(b" ")
                if len(head) != 6 or head[0] != token.encode():
                    bad = True
                    break
                try:
                    kind, idx, line, detail, size = (head[1].decode(), int(head[2]), int(head[3]),
                                                     head[4].decode(), int(head[5]))
                except (UnicodeDecodeError, ValueError):
                    bad = True
                    break
                if len(buf) < nl + 1 + size:
                    break
                payload = buf[nl + 1:nl + 1 + size].decode("utf-8", "replace")
                buf = buf[nl + 1 + size:]
                records.append((kind, idx, line if line >= 0 else None, detail, payload))
                if kind in ("compiled", "start"):
                    deadline = time.monotonic() + timeout
            if bad:
                killed_for = "tampered"
                break
        status = self._kill_and_reap(pid)
        return {"records": records, "killed_for": killed_for, "exit": status,
                "seconds": time.monotonic() - t0}

    def _kill_and_reap(self, pid: int) -> str:
        for fn in (os.killpg, os.kill):
            try:
                fn(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        _, st = os.waitpid(pid, 0)
        if os.WIFSIGNALED(st):
            sig = os.WTERMSIG(st)
            try:
                return "signal:" + signal.Signals(sig).name
            except ValueError:
                return f"signal:{sig}"
        return f"exit:{os.WEXITSTATUS(st)}"

    # -- jobs -------------------------------------------------------------------------------------------
    def run_job(self, job: dict) -> dict[str, Any]:
        typ = job["tests"]["type"]
        if typ == "assert":
            # Test code is trusted: compile (and rewrite) it here once, so every child inherits the code objects.
            key = (job["tests"].get("setup") or "", tuple(job["tests"]["asserts"]))
            if key not in self._test_cache:
                if len(self._test_cache) > 512:
                    self._test_cache.clear()
                self._test_cache[key] = harness.compile_tests(job["tests"])
            job["_compiled"] = self._test_cache[key]
        if typ != "stdio":
            return {"id": job["id"], "runs": [self.run_child(job, typ)]}
        return {"id": job["id"], "stdio": self._run_stdio(job)}

    def _run_stdio(self, job: dict) -> dict[str, Any]:
        """Run every stdio test, in as few children as possible; digest the records per test.

        Returns ``{"compile_error": [detail, line]}`` or ``{"tests": [obs, ...]}`` with one entry per test that
        ran: ``{"status": ok|exit|error|<cause>, "detail", "line", "output", "seconds"}``.
        """
        n = len(job["tests"]["inputs"])
        rundir = self.run_dir
        tests: list[dict[str, Any]] = []
        i = 0
        try:
            while i < n:
                obs = self.run_child(job, "stdio", i, keep_dir=True)
                current: int | None = None
                progressed = False
                for kind, idx, line, detail, _payload in obs["records"]:
                    if kind == "compile_error":
                        return {"compile_error": [detail, line]}
                    if kind == "start" and idx == len(tests) and idx < n:
                        current, progressed = idx, True
                    elif kind in ("ok", "exit", "error") and idx == current:
                        tests.append({"status": kind, "detail": detail, "line": line})
                        current = None
                if current is not None:  # the child ended inside this test
                    cause = obs["killed_for"] or ("exit" if obs["exit"].startswith("exit:") else obs["exit"])
                    tests.append({"status": "exit" if cause == "exit" else cause, "detail": cause, "line": None})
                elif not progressed:  # ended before starting a test: charge it to the next one
                    cause = obs["killed_for"] or obs["exit"]
                    if not obs["records"] and obs["exit"] == f"exit:{SANDBOX_FAULT}":
                        cause = "sandbox_error"
                    tests.append({"status": cause, "detail": cause, "line": None})
                for k in range(i, len(tests)):
                    tests[k]["output"] = self._read_capped(os.path.join(rundir, f"out{k}.txt"))
                if tests:
                    tests[-1]["seconds"] = obs["seconds"]
                i = len(tests)
                # A program that hangs on one input would cost a timeout on every other one.
                if tests and tests[-1]["status"] == "timeout":
                    break
        finally:
            self._cleanup(rundir)
        return {"tests": tests}


def _read_lines(fd: int):
    buf = b""
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            if buf.strip():
                yield buf
            return
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            yield buf[:nl]
            buf = buf[nl + 1:]


def _send(fd: int, obj: Any) -> None:
    data = memoryview((json.dumps(obj) + "\n").encode())
    while data:
        n = os.write(fd, data)
        data = data[n:]


def main() -> None:
    cfg = json.loads(sys.argv[1])
    # `python -m` puts the working directory first on sys.path; programs must not import from it.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        sys.path.pop(0)
    # Keep the protocol on private descriptors; fds 0 and 1 become harmless.
    in_fd, out_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    server = Server(cfg)
    server.setup()
    _send(out_fd, {"ready": True, "pid": os.getpid(), "protections": server.prot.active,
                   "missing": server.prot.missing})
    for line in _read_lines(in_fd):
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            res = server.run_job(job)
        except Exception as e:  # a server fault must not look like a program verdict
            res = {"id": job.get("id"), "server_error": f"{type(e).__name__}: {e}"}
        _send(out_fd, res)


if __name__ == "__main__":
    main()
