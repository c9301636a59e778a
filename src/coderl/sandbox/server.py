"""The fork server: one per executor worker, started with ``python -m coderl.sandbox.server CONFIG``.

It sets up namespaces once, pre-imports the modules programs commonly use, forks the zygote (the clean image
every run is forked from, see :mod:`coderl.sandbox.zygote`), and then judges jobs: it receives a program with
its tests, runs it in confined children, and evaluates the tests itself (:mod:`coderl.sandbox.judge`). It
speaks newline-delimited JSON with the executor on two private descriptors and answers each job with the
outcome of each test; the executor turns that into a Result.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from coderl.sandbox import isolation, judge, seccomp, zygote
from coderl.sandbox.child import Child, ZygoteLost

PRELOAD = (
    "numpy", "math", "cmath", "collections", "itertools", "functools", "heapq", "bisect", "re", "string",
    "random", "fractions", "decimal", "statistics", "typing", "datetime", "copy", "operator", "json",
    "array", "dataclasses", "enum", "hashlib", "textwrap", "unicodedata",
)
# Not preloaded: threading (and queue, which imports it) registers an after-fork handler that costs every child
# ~130 copied pages; the few programs that use them import them in a millisecond or two.

SANDBOX_FAULT = zygote.SANDBOX_FAULT
_COMPILED_CACHE = 512


class Server:
    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.prot = isolation.Protections()
        self.base = cfg["base_dir"]
        self.run_dir = os.path.join(self.base, "run")  # every run's directory, created afresh for each child
        self.uid: int | None = None
        self.use_seccomp = False
        self.private_fs = False
        self.output_cap = cfg["output_mb"] * 1024 * 1024
        self._compiled: dict[tuple, judge.CompiledTests | str] = {}
        self._zsock: Any = None
        self.pid_namespace = False
        self._faults: list[str] = []

    # -- set-up ---------------------------------------------------------------------------------------
    def setup(self, close_in_zygote: tuple[int, ...] = ()) -> None:
        # No PDEATHSIG for the server itself: it fires when the *thread* that started the server exits, and
        # executors restart servers from worker threads. The server exits when its job pipe closes instead.
        if self.cfg.get("cpu") is not None:
            try:
                os.sched_setaffinity(0, {int(self.cfg["cpu"])})  # the zygote and every run inherit it
            except OSError:
                pass
        self.prot.ok("parent-death signal", "each run gets SIGKILL if the zygote dies, the zygote if the server "
                                            "dies; a server exits when its executor's pipe closes")
        isolate = self.cfg.get("isolate", True)
        if isolate:
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
        self.prot.ok("session + deadlines", "each run in its own session; every deadline is kept by the judge, which "
                                  "kills the run (no SIGALRM inside the program)")
        self.prot.ok("scrubbed environment", "children see only PATH, LANG and thread-count variables")
        self.prot.ok("result channel", "the judge (this server) runs the tests, asserts included, and keeps the "
                                       "expected values, comparisons and deadlines; the program's process only "
                                       "answers its questions with plain values on a private pipe")
        for mod in self.cfg.get("preload", PRELOAD):
            try:
                __import__(mod)
            except ImportError:
                pass
        # What every child needs and the server does not mind, set once here (children inherit it through the
        # zygote): default signal dispositions (over-long output then raises OSError(EFBIG) instead of
        # SIGXFSZ), and the scrubbed environment with HOME and TMPDIR at the run directory.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        os.environ.clear()
        os.environ.update(isolation.CHILD_ENV, HOME=self.run_dir, TMPDIR=self.run_dir)
        # Across a PID namespace the server can only address a run through a pidfd (a pid number from inside the
        # namespace would name some other process out here), so without pidfds there is no namespace.
        pid_ns = (isolate and "network namespace" in self.prot.active and _pidfds_work()
                  and isolation.new_pid_namespace(self.prot))
        cfg = zygote.Config(self.run_dir, self.uid, self.cfg["memory_mb"], self.cfg["output_mb"],
                            seccomp.Prepared() if self.use_seccomp else None, pid_ns)
        self.pid_namespace = bool(pid_ns)
        self._zpid, self._zsock = zygote.start(cfg, isolate, close_in_zygote)
        hello = self._zsock.recv(4096)
        if not hello.startswith(b"ready "):
            raise ZygoteLost("the zygote did not start")
        for name, how in json.loads(hello[6:]).items():
            if name.startswith("!"):
                self.prot.fail(name[1:], how)
            else:
                self.prot.ok(name, how)
        if not pid_ns and "pid namespace" not in self.prot.missing:
            self.prot.fail("pid namespace", "needs the namespaces above and pidfds (Linux 5.3); runs can list the "
                                            "host's processes")
        self.prot.ok("clean process image", "every run is forked from a zygote that never held a job: no run "
                                            "inherits another's program, tests or results")
        signal.signal(signal.SIGALRM, signal.SIG_IGN)  # the judge arms it around test code

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

    # -- runs ---------------------------------------------------------------------------------------------
    def spawn(self, cpu_seconds: int) -> Child:
        """A confined child on a fresh run directory, forked by the zygote."""
        return Child(self._zsock, self.run_dir, self.uid, cpu_seconds, self.output_cap, self._clean_shared,
                     after=self._after, pid_namespace=self.pid_namespace)

    def _after(self, child: Child) -> None:
        if child.fault:
            self._faults.append(child.fault)
        if self.uid is not None and not self.use_seccomp:
            isolation.kill_uid(self.uid)

    def _clean_shared(self) -> None:
        if self.private_fs:
            base_top = self.base.split("/")
            for d in isolation.SHARED_WRITABLE:
                keep = set(isolation.KEPT_IN_SHARED)
                if len(base_top) > 2 and "/" + base_top[1] == d:
                    keep.add(base_top[2])
                isolation.clean_dir(d, keep=keep)

    # -- jobs -------------------------------------------------------------------------------------------
    def run_job(self, job: dict[str, Any]) -> dict[str, Any]:
        t0 = time.monotonic()
        self._faults = []
        spec = job["tests"]
        checker = job.get("checker") or "default"
        if spec["type"] == "assert":
            # Test code is trusted: compiled here once and kept (the zygote, and so every run, never sees it).
            key = (spec.get("setup") or "", spec.get("fixtures") or "", tuple(spec["asserts"]))
            compiled = self._compiled.get(key)
            if compiled is None:
                if len(self._compiled) >= _COMPILED_CACHE:
                    self._compiled.clear()
                compiled = self._compiled[key] = judge.compile_tests(spec)
            if isinstance(compiled, str):
                resp: dict[str, Any] = {"load_error": [compiled, None]}
            else:
                resp = judge.judge_assert(self.spawn, job, compiled)
        elif spec["type"] == "call":
            resp = judge.judge_call(self.spawn, job, checker)
        else:
            resp = judge.judge_stdio(self.spawn, job, checker)
        resp["id"] = job["id"]
        resp["seconds"] = time.monotonic() - t0
        if self._faults:
            resp["faults"] = self._faults
        return resp


def _pidfds_work() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
        return hasattr(signal, "pidfd_send_signal")
    except (AttributeError, OSError):
        return False


def _read_lines(fd: int):
    """Lines of the job pipe; linear in their length however the bytes arrive."""
    buf = bytearray()
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            if buf.strip():
                yield bytes(buf)
            return
        start = len(buf)
        buf += chunk
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            yield bytes(buf[:nl])
            del buf[:nl + 1]
            start = 0


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
    server.setup(close_in_zygote=(in_fd, out_fd))
    _send(out_fd, {"ready": True, "pid": os.getpid(), "protections": server.prot.active,
                   "missing": server.prot.missing})
    for line in _read_lines(in_fd):
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            res = server.run_job(job)
        except ZygoteLost as e:  # never fork a new zygote from this (no longer clean) process: exit instead
            _send(out_fd, {"id": job.get("id"), "server_error": f"zygote lost: {e}"})
            return
        except Exception as e:  # a server fault must not look like a program verdict
            res = {"id": job.get("id"), "server_error": f"{type(e).__name__}: {e}"}
        _send(out_fd, res)


if __name__ == "__main__":
    main()
