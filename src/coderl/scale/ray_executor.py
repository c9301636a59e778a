"""The sandboxed executor spread over a Ray cluster: one actor per node (or several) wraps a
:class:`coderl.sandbox.Executor`, whose fork-server pool uses that node's cores.

A batch is cut into chunks of consecutive requests; each live actor keeps up to ``inflight_per_actor`` chunks
queued (so it never idles on a driver round trip), and results are yielded in request order as soon as the
next one is in. When an actor or its node dies, the chunks it held go back to the front of the queue and run on
another actor; a replacement actor is started wherever Ray finds room. Results are recorded by request index,
so a chunk that runs twice (or answers late) never yields anything twice, and every request's result arrives
exactly once.

Usage is that of ``Executor``::

    with RayExecutor(address="auto", timeout=3.0) as ex:   # address=None: a local Ray instance
        results = ex.run(requests)

The sandbox runs inside Ray worker processes. Its protections depend on what the node allows (root, user
namespaces, seccomp); every actor reports its own, and each protection missing on a node is logged as a warning
by the driver (Ray does not forward worker logs with ``log_to_driver=False``) and listed by :meth:`explain`;
``strict=True`` refuses to run instead.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from coderl.sandbox import Executor, Request, Result, SandboxError, parse_request

log = logging.getLogger("coderl.scale")


class _Ledger:
    """Results by request index: the first result for an index wins, later ones are counted and dropped."""

    def __init__(self, n: int):
        self.n, self.results = n, {}
        self.duplicates = 0
        self.next = 0  # the next index to hand to the caller

    def add(self, index: int, result: Result) -> bool:
        if not 0 <= index < self.n:
            raise IndexError(f"result for request index {index} outside the batch of {self.n}")
        if index in self.results or index < self.next:
            self.duplicates += 1
            return False
        self.results[index] = result
        return True

    def pop_ready(self) -> Iterator[Result]:
        """Results that are next in request order, each exactly once."""
        while self.next in self.results:
            res = self.results.pop(self.next)
            self.next += 1
            yield res

    @property
    def done(self) -> bool:
        return self.next >= self.n


class ExecActor:
    """Runs on a Ray worker: one sandbox Executor; chunks arrive as request dicts, leave as result dicts."""

    def __init__(self, executor_kwargs: dict[str, Any]):
        self.ex = Executor(**executor_kwargs)
        self.ex.start()

    def hello(self) -> dict[str, Any]:
        import ray

        active, missing = self.ex.protections()
        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid(),
                "workers": self.ex.workers, "active": active, "missing": missing}

    def run_chunk(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.ex.run(requests)]

    def echo(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Results of the same size without running anything: measures transport + serialization alone."""
        return [{"id": r["id"], "outcome": "passed", "detail": "", "tests": ["passed"] * 10, "pass_fraction": 1.0,
                 "error_line": None, "seconds": 0.0} for r in requests]

    def explain(self) -> str:
        return self.ex.explain()

    def close(self) -> None:
        self.ex.close()


@dataclass
class _Slot:
    """One actor as the driver sees it."""

    handle: Any
    name: str
    info: dict[str, Any] = field(default_factory=dict)
    inflight: int = 0
    alive: bool = True


_LOST_HINT = "an actor or its node died"


class RayExecutor:
    """:class:`coderl.sandbox.Executor` on a Ray cluster (same ``run`` / ``imap`` / ``run_one`` interface).

    ``address``: the Ray cluster (``"auto"``, ``"ray://head:10001"``, ...); None starts a local instance (or
    uses the one already initialised in this process). ``workers``: sandbox workers per actor (default: the
    node's CPUs divided by ``actors_per_node``). ``actors_per_node``: actors placed on each node (more than one
    only to test failover on one machine). ``cpus_per_actor``: CPUs each actor reserves in Ray's accounting
    (default ``workers``). ``chunk_size``: requests per task sent to an actor. ``inflight_per_actor``: chunks
    queued per actor. ``max_attempts``: tries per chunk before the batch fails. ``strict``: raise instead of
    warning when a node's sandbox lacks a protection. ``init_kwargs``: extra arguments to ``ray.init``. The
    remaining keyword arguments (timeout, memory_mb, checker, isolate, use_seccomp, uid_base, preload, ...) go
    to each node's ``Executor``; ``cache`` is not supported here (run with the local backend to use it).
    """

    def __init__(self, address: str | None = None, workers: int | None = None, actors_per_node: int = 1,
                 cpus_per_actor: float | None = None, chunk_size: int = 16, inflight_per_actor: int = 2,
                 max_attempts: int = 3, strict: bool = False, init_kwargs: dict[str, Any] | None = None,
                 **executor_kwargs: Any):
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ImportError("ray is not installed; install it with `pip install 'coderl[ray]'`")
        if executor_kwargs.get("cache"):
            raise ValueError("RayExecutor does not support the result cache; use the local Executor for cache=...")
        executor_kwargs.pop("cache", None)
        if actors_per_node < 1 or chunk_size < 1 or inflight_per_actor < 1 or max_attempts < 1:
            raise ValueError("RayExecutor: actors_per_node, chunk_size, inflight_per_actor and max_attempts "
                             "must be >= 1")
        if workers is not None and workers < 1:
            raise ValueError("RayExecutor: workers must be >= 1 (or None for the node's CPUs)")
        Executor(**{k: v for k, v in executor_kwargs.items()}, workers=1)  # validates the settings, starts nothing
        self.address, self.workers_per_actor, self.actors_per_node = address, workers, actors_per_node
        self.cpus_per_actor, self.chunk_size, self.inflight = cpus_per_actor, chunk_size, inflight_per_actor
        self.max_attempts, self.strict = max_attempts, strict
        self.init_kwargs = dict(init_kwargs or {})
        self.executor_kwargs = executor_kwargs
        self.timeout = float(executor_kwargs.get("timeout", 3.0))
        self.cache_hits = 0  # interface parity with Executor (no cache here)
        self.slots: list[_Slot] = []
        self.stats = {"chunks": 0, "retried_chunks": 0, "actors_lost": 0, "actors_replaced": 0,
                      "duplicates_dropped": 0}
        self._owns_ray = False
        self._spawned = 0
        self._starting: dict[Any, _Slot] = {}  # hello() ref of a replacement actor -> its slot

    # -- lifecycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> RayExecutor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def workers(self) -> int:
        """Sandbox workers over all live actors."""
        return sum(s.info.get("workers", 0) for s in self.slots if s.alive)

    def start(self) -> None:
        if self.slots:
            return
        from coderl.scale import require

        ray = require("ray", "ray")
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, **{"include_dashboard": False, "log_to_driver": False,
                                                  **self.init_kwargs})
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SandboxError(f"cannot start or reach Ray (address {self.address!r}): {e}") from None
            self._owns_ray = True
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        if not nodes:
            raise SandboxError("the Ray cluster has no live node with CPUs")
        slots = []
        for node in nodes:
            for k in range(self.actors_per_node):
                workers = self.workers_per_actor or max(1, int(node["Resources"]["CPU"]) // self.actors_per_node)
                slots.append(self._spawn(node["NodeID"], workers, slot_index=k))
        try:
            infos = ray.get([s.handle.hello.remote() for s in slots])
        except ray.exceptions.RayError as e:
            for s in slots:
                ray.kill(s.handle)
            raise SandboxError(f"a Ray executor actor failed to start: {e}") from None
        for s, info in zip(slots, infos, strict=True):
            s.info = info
        self.slots = slots
        self._check_protections(slots)

    def close(self) -> None:
        if self.slots:
            import ray

            for s in self.slots + list(self._starting.values()):
                if s.alive:
                    try:
                        s.handle.close.remote()
                        ray.kill(s.handle)
                    except Exception:  # an actor that is already gone needs no closing
                        pass
            self.slots, self._starting = [], {}
            if self._owns_ray:
                ray.shutdown()
                self._owns_ray = False

    def _spawn(self, node_id: str | None, workers: int, slot_index: int) -> _Slot:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        kw = dict(self.executor_kwargs, workers=workers)
        # Actors sharing a node must not share the per-worker uids (a program could signal its neighbour's).
        uid_base = kw.get("uid_base", 61000)
        if uid_base is not None:
            kw["uid_base"] = uid_base + slot_index * workers
        opts: dict[str, Any] = {"num_cpus": self.cpus_per_actor if self.cpus_per_actor is not None else workers,
                                "max_restarts": 0, "max_task_retries": 0}
        if node_id is not None:
            # soft: a replacement may land elsewhere when the node is gone
            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id, soft=True)
        self._spawned += 1
        handle = ray.remote(ExecActor).options(**opts).remote(kw)
        return _Slot(handle=handle, name=f"exec-{self._spawned}")

    def _check_protections(self, slots: list[_Slot]) -> None:
        for s in slots:
            missing = s.info.get("missing") or {}
            if missing:
                msg = (f"sandbox on Ray node {s.info.get('host')} ({s.name}, pid {s.info.get('pid')}) is running "
                       f"without: {', '.join(sorted(missing))}")
                if self.strict:
                    raise SandboxError(msg + " (strict=True)")
                log.warning(msg)

    def protections(self) -> tuple[dict[str, str], dict[str, str]]:
        """(active, missing) of the weakest live actor: a protection is active only if every node has it."""
        live = [s for s in self.slots if s.alive]
        if not live:
            raise RuntimeError("executor not started")
        active = dict(live[0].info["active"])
        missing: dict[str, str] = {}
        for s in live:
            missing.update(s.info["missing"])
        for k in missing:
            active.pop(k, None)
        return active, missing

    def explain(self) -> str:
        import ray

        lines = []
        for s in self.slots:
            if s.alive:
                head = f"Ray node {s.info['host']} ({s.info['node'][:12]}), actor {s.name}, {s.info['workers']} workers"
                lines += [head, ray.get(s.handle.explain.remote()), ""]
        return "\n".join(lines).rstrip()

    # -- running --------------------------------------------------------------------------------------------
    def imap(self, requests: Iterable[Request | dict[str, Any]],
             on_result: Callable[[Result], None] | None = None) -> Iterator[Result]:
        """Yield results in request order while every actor works on its chunks."""
        import ray

        if not self.slots:
            self.start()
        reqs = [r if isinstance(r, Request) else parse_request(r) for r in requests]
        payload = [r.to_dict() for r in reqs]
        ledger = _Ledger(len(reqs))
        chunks = [range(i, min(i + self.chunk_size, len(reqs))) for i in range(0, len(reqs), self.chunk_size)]
        todo = collections.deque(range(len(chunks)))
        attempts = [0] * len(chunks)
        inflight: dict[Any, tuple[int, _Slot]] = {}
        starting = self._starting
        self.stats["chunks"] += len(chunks)
        while not ledger.done:
            for s in self.slots:
                while s.alive and s.inflight < self.inflight and todo:
                    c = todo.popleft()
                    attempts[c] += 1
                    ref = s.handle.run_chunk.remote([payload[i] for i in chunks[c]])
                    inflight[ref] = (c, s)
                    s.inflight += 1
            if not inflight and not starting:
                if todo:
                    raise SandboxError(f"no live Ray executor actor left ({_LOST_HINT}; none could be replaced)")
                raise RuntimeError("RayExecutor: chunks missing without being in flight (bug)")
            ready, _ = ray.wait(list(inflight) + list(starting), num_returns=1)
            ref = ready[0]
            if ref in starting:
                self._joined(ref, starting)
                continue
            c, slot = inflight.pop(ref)
            slot.inflight -= 1
            try:
                out = ray.get(ref)
            except ray.exceptions.RayTaskError as e:  # the executor raised (e.g. a fork server would not start)
                if attempts[c] >= self.max_attempts:
                    raise SandboxError(f"chunk of requests {chunks[c].start}..{chunks[c].stop - 1} failed "
                                       f"{attempts[c]} times; last error: {e}") from None
                self.stats["retried_chunks"] += 1
                todo.appendleft(c)
                continue
            except ray.exceptions.RayError as e:  # actor, worker or node gone: retry elsewhere
                self._lost(slot, starting)
                if attempts[c] >= self.max_attempts:
                    raise SandboxError(f"chunk of requests {chunks[c].start}..{chunks[c].stop - 1} lost "
                                       f"{attempts[c]} times ({_LOST_HINT}): {e}") from None
                self.stats["retried_chunks"] += 1
                todo.appendleft(c)
                continue
            for i, d in zip(chunks[c], out, strict=True):
                res = Result.from_dict(d)
                if res.id != reqs[i].id:
                    raise RuntimeError(f"RayExecutor: result id {res.id!r} for request {reqs[i].id!r} (bug)")
                ledger.add(i, res)
            self.stats["duplicates_dropped"] = ledger.duplicates
            for res in ledger.pop_ready():
                if on_result is not None:
                    on_result(res)
                yield res

    def _lost(self, slot: _Slot, starting: dict[Any, _Slot]) -> None:
        """Mark an actor dead (once) and ask Ray for a replacement anywhere it fits."""
        import ray

        if not slot.alive:
            return
        slot.alive = False
        self.stats["actors_lost"] += 1
        log.warning("Ray executor actor %s (node %s) lost; its chunks are retried elsewhere", slot.name,
                    slot.info.get("host"))
        try:
            ray.kill(slot.handle)
        except Exception:  # already dead
            pass
        n_lost = sum(1 for s in self.slots if not s.alive)
        repl = self._spawn(None, slot.info.get("workers", 1), slot_index=self.actors_per_node + n_lost - 1)
        starting[repl.handle.hello.remote()] = repl

    def _joined(self, ref: Any, starting: dict[Any, _Slot]) -> None:
        import ray

        repl = starting.pop(ref)
        try:
            repl.info = ray.get(ref)
        except ray.exceptions.RayError as e:
            log.warning("replacement Ray executor actor failed to start: %s", e)
            return
        self._check_protections([repl])
        self.slots.append(repl)
        self.stats["actors_replaced"] += 1

    def run(self, requests: Iterable[Request | dict[str, Any]]) -> list[Result]:
        return list(self.imap(requests))

    def run_one(self, program: str, tests: dict[str, Any], timeout: float | None = None,
                checker: str | None = None) -> Result:
        req: dict[str, Any] = {"id": "0", "program": program, "tests": tests}
        if timeout is not None:
            req["timeout"] = timeout
        if checker is not None:
            req["checker"] = checker
        return self.run([req])[0]

