"""The executor: a pool of fork servers, a job queue, verdicts in request order, and an optional cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import select
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from coderl.sandbox.schema import CHECKERS, Request, Result, parse_request
from coderl.sandbox.verdict import judge

log = logging.getLogger("coderl.sandbox")

CACHE_VERSION = 1


class SandboxError(RuntimeError):
    """The sandbox itself failed (a server would not start), as opposed to a program's verdict."""


def _server_env() -> dict[str, str]:
    from coderl.sandbox.isolation import CHILD_ENV

    env = dict(CHILD_ENV)
    # Lets `python -m coderl.sandbox.server` work from a source checkout that is not installed.
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class _Worker:
    def __init__(self, index: int, cfg: dict[str, Any]):
        self.index, self.cfg = index, dict(cfg)
        self.cfg["base_dir"] = f"/tmp/coderl-{os.getpid()}-w{index}"
        if os.getuid() == 0 and cfg["uid_base"] is not None:
            self.cfg["uid"] = cfg["uid_base"] + index
        self.proc: subprocess.Popen | None = None
        self.hello: dict[str, Any] = {}
        self._buf = bytearray()

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def spawn(self) -> None:
        """Start the server process without waiting for it (servers of a pool start side by side)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coderl.sandbox.server", json.dumps(self.cfg)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=_server_env(), close_fds=True, start_new_session=True, cwd="/",
        )
        self._buf = bytearray()

    def wait_ready(self) -> None:
        hello = self._recv(60.0)
        if hello is None or not hello.get("ready"):
            self.stop()
            raise SandboxError(f"sandbox worker {self.index} failed to start")
        self.hello = hello

    def stop(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
            except OSError:
                pass
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self.proc = None
        shutil.rmtree(self.cfg["base_dir"], ignore_errors=True)

    def _recv(self, wait: float) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + wait
        scanned = 0  # the buffer is searched once, however the response arrives
        while (nl := self._buf.find(b"\n", scanned)) < 0:
            scanned = len(self._buf)
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self._buf += chunk
        line = bytes(self._buf[:nl])
        del self._buf[:nl + 1]
        return json.loads(line)

    def call(self, job: dict[str, Any], wait: float) -> dict[str, Any] | None:
        """Send a job and wait for its observations; None when the server died or hung (it is restarted)."""
        try:
            if self.proc is None:
                self.start()
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(job) + "\n").encode())
            self.proc.stdin.flush()
            resp = self._recv(wait)
        except (OSError, ValueError):
            resp = None
        if resp is None:
            log.warning("sandbox worker %d lost on job %s; restarting it", self.index, job.get("id"))
            self.stop()
        return resp


class Executor:
    """Runs untrusted programs against tests in sandboxed fork servers.

    Use as a context manager::

        with Executor(workers=2, timeout=3.0) as ex:
            results = ex.run(requests)      # list[Result], same order as requests

    ``requests`` may be :class:`Request` objects or dicts in the request JSON format.

    ``isolate`` (namespaces), ``use_seccomp`` and ``uid_base`` (first of the per-worker uids used when running
    as root; None runs programs as the caller) exist to run or test a weaker sandbox on purpose; whatever is
    off is listed by :meth:`explain` and logged.

    ``pin_cpus`` keeps each worker (its judge and the program it runs) on one of the CPUs this process may use,
    worker i on the i-th modulo their number: the judge and the program take turns, and on one CPU each turn
    is a context switch instead of a cross-CPU wake-up (a call into the program: ~20 us instead of ~90 us).
    """

    def __init__(self, workers: int | None = None, timeout: float = 3.0, memory_mb: int = 2048,
                 output_mb: int = 16, checker: str = "default", cache: bool | str | os.PathLike = False,
                 isolate: bool = True, use_seccomp: bool = True, uid_base: int | None = 61000, tmpfs_mb: int = 512,
                 preload: tuple[str, ...] | None = None, pin_cpus: bool = True):
        if checker not in CHECKERS:
            raise ValueError(f"checker must be one of {CHECKERS}, got {checker!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if memory_mb < 256:
            raise ValueError("memory_mb below 256 leaves no room for the interpreter itself")
        self.workers = workers or os.cpu_count() or 1
        self.timeout, self.checker = float(timeout), checker
        self.memory_mb, self.output_mb = memory_mb, output_mb
        self._cfg = {"memory_mb": memory_mb, "output_mb": output_mb, "tmpfs_mb": tmpfs_mb, "isolate": isolate,
                     "seccomp": use_seccomp, "uid_base": uid_base}
        if preload is not None:
            self._cfg["preload"] = list(preload)
        self._cpus = sorted(os.sched_getaffinity(0)) if pin_cpus and hasattr(os, "sched_getaffinity") else []
        self._pool: list[_Worker] = []
        self._cache: dict[str, dict[str, Any]] | None = None
        self._cache_path: Path | None = None
        if cache:
            self._cache = {}
            if not isinstance(cache, bool):
                self._cache_path = Path(cache)
                if self._cache_path.exists():
                    for line in self._cache_path.read_text().splitlines():
                        if line.strip():
                            rec = json.loads(line)
                            self._cache[rec["key"]] = rec["result"]
        self.cache_hits = 0

    # -- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self._pool:
            return
        pool = [_Worker(i, {**self._cfg, "cpu": self._cpus[i % len(self._cpus)] if self._cpus else None})
                for i in range(self.workers)]
        try:
            for w in pool:
                w.spawn()
            for w in pool:
                w.wait_ready()
        except BaseException:
            for w in pool:
                w.stop()
            raise
        self._pool = pool
        missing = self.protections()[1]
        if missing:
            log.warning("sandbox running without: %s (see `coderl exec --explain`)", ", ".join(sorted(missing)))

    def close(self) -> None:
        for w in self._pool:
            w.stop()
        self._pool = []

    def protections(self) -> tuple[dict[str, str], dict[str, str]]:
        """(active, missing) protections as reported by the first worker."""
        if not self._pool:
            raise RuntimeError("executor not started")
        h = self._pool[0].hello
        return h.get("protections", {}), h.get("missing", {})

    def explain(self) -> str:
        active, missing = self.protections()
        lines = ["Active protections:"]
        lines += [f"  + {k}: {v}" for k, v in active.items()]
        if missing:
            lines.append("Missing protections:")
            lines += [f"  - {k}: {v}" for k, v in missing.items()]
        return "\n".join(lines)

    # -- running --------------------------------------------------------------------------------------------
    def _key(self, req: Request) -> str:
        blob = json.dumps([CACHE_VERSION, req.program, req.tests, req.timeout or self.timeout, self.memory_mb,
                           self.output_mb, req.checker or self.checker], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _execute(self, worker: _Worker, req: Request) -> Result:
        timeout = req.timeout or self.timeout
        checker = req.checker or self.checker
        job = {"id": req.id, "program": req.program, "tests": req.tests, "timeout": timeout, "checker": checker,
               "apps_wrap": checker == "apps" and req.tests["type"] == "stdio"}
        # The judge keeps every deadline; this only catches a server that stopped answering. A stdio test may
        # take two phases (compile, run), an in-process run three before its tests (compile, load, setup).
        wait = timeout * (2 * req.n_tests + 3) * 1.5 + 10.0
        for _attempt in range(2):
            resp = worker.call(job, wait)
            if resp is not None:
                try:
                    res = judge(req, resp)
                except Exception as e:  # a malformed response must cost one verdict, never the batch
                    log.warning("could not read the verdict of %s (%s: %s)", req.id, type(e).__name__, e)
                    return Result(req.id, "runtime_error", "sandbox_error", ["not_run"] * req.n_tests, 0.0, None,
                                  0.0)
                if res.detail == "sandbox_error":
                    log.warning("sandbox failed for %s: %s", req.id,
                                resp.get("server_error") or " ".join(resp.get("faults", []))[-500:])
                    if "server_error" in resp:  # retry on a fresh server (and a fresh zygote)
                        worker.stop()
                        continue
                return res
        return Result(req.id, "runtime_error", "sandbox_error", ["not_run"] * req.n_tests, 0.0, None, 0.0)

    def imap(self, requests: Iterable[Request | dict[str, Any]],
             on_result: Callable[[Result], None] | None = None) -> Iterator[Result]:
        """Yield results in request order while all workers run."""
        if not self._pool:
            self.start()
        reqs = [r if isinstance(r, Request) else parse_request(r) for r in requests]
        results: dict[int, Result] = {}
        todo: queue.Queue[int] = queue.Queue()
        keys: dict[int, str] = {}
        first_of: dict[str, int] = {}  # with a cache, identical requests in one batch run once
        dup_of: dict[int, int] = {}
        for i, r in enumerate(reqs):
            if self._cache is not None:
                keys[i] = self._key(r)
                hit = self._cache.get(keys[i])
                if hit is not None:
                    self.cache_hits += 1
                    results[i] = Result.from_dict({**hit, "id": r.id})
                    continue
                if keys[i] in first_of:
                    dup_of[i] = first_of[keys[i]]
                    continue
                first_of[keys[i]] = i
            todo.put(i)
        done_results: dict[int, Result] = {}
        cond = threading.Condition()
        errors: list[BaseException] = []

        def work(w: _Worker) -> None:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    res = self._execute(w, reqs[i])
                except BaseException as e:  # surface in the caller, not in a dead thread
                    with cond:
                        errors.append(e)
                        cond.notify_all()
                    return
                with cond:
                    results[i] = res
                    cond.notify_all()

        threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in self._pool]
        for t in threads:
            t.start()
        cache_file = open(self._cache_path, "a") if self._cache_path is not None else None
        try:
            for i in range(len(reqs)):
                src = dup_of.get(i, i)
                with cond:
                    while src not in results and src not in done_results and not errors:
                        cond.wait()
                    if errors:
                        raise errors[0]
                    if src in results:
                        done_results[src] = results.pop(src)
                    res = done_results[src]
                if src != i:
                    self.cache_hits += 1
                    res = Result.from_dict({**res.to_dict(), "id": reqs[i].id})
                elif i not in dup_of.values():
                    done_results.pop(i, None)
                if self._cache is not None and i in keys and keys[i] not in self._cache:
                    if res.detail != "sandbox_error":
                        rec = res.to_dict()
                        self._cache[keys[i]] = rec
                        if cache_file is not None:
                            cache_file.write(json.dumps({"key": keys[i], "result": rec}) + "\n")
                            cache_file.flush()
                if on_result is not None:
                    on_result(res)
                yield res
        finally:
            if cache_file is not None:
                cache_file.close()
            for t in threads:
                t.join(timeout=0 if errors else None)

    def run(self, requests: Iterable[Request | dict[str, Any]]) -> list[Result]:
        return list(self.imap(requests))

    def run_one(self, program: str, tests: dict[str, Any], timeout: float | None = None,
                checker: str | None = None) -> Result:
        req = {"id": "0", "program": program, "tests": tests}
        if timeout is not None:
            req["timeout"] = timeout
        if checker is not None:
            req["checker"] = checker
        return self.run([req])[0]
