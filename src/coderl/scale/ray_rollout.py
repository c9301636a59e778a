"""Rollouts on Ray: generation workers separate from the trainer (the verl / OpenRLHF layout).

The trainer process owns the policy and the optimiser. Each step, :meth:`RayRollouts.rollouts`

1. pushes the current weights to every generation worker (one ``ray.put`` of the state dict, read by all
   workers from the object store; the time until every worker has loaded them is the step's ``sync_s``);
2. cuts the step's problems into ``micro_batches`` consecutive groups and asks the workers to generate them
   (group j on worker j mod W; a worker takes its groups one after another);
3. runs each group's programs on the executor (local or :class:`~coderl.scale.ray_executor.RayExecutor`) as
   soon as the group's completions are back, on a driver thread, so executing group j overlaps generating
   group j+1 — the policy stays on-policy (all groups are sampled from the same weights), unlike pipelines that
   overlap across steps with one-step-stale weights.

``train_rl(..., rollout_backend=RayRollouts(...))`` uses it for phases 2-3 and adds its timings to each step's
record: ``sync_s`` / ``sync_mb`` (weight push), ``gen_s`` (first request to last completion), ``exec_s``
(summed execution time), ``rollout_s`` (the phase's wall time) and ``overlap_s`` = gen_s + exec_s - rollout_s
(time saved by overlapping; about 0 with one micro-batch).

With ``micro_batches=1`` and one worker the samples are exactly those of the single-process path (same seed,
same batch), which the tests use to check that weights really are synchronised every step.
"""

from __future__ import annotations

import concurrent.futures
import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coderl.rl.loop import Rollout, execute
from coderl.tasks.problem import Problem
from coderl.tasks.prompt import format_prompt

GENERATORS = ("loop", "hf", "vllm")


@dataclass
class RolloutWorkerConfig:
    """How the generation workers are laid out (one concern: where and how programs are sampled)."""

    workers: int = 1
    """Generation actors (each holds a full copy of the policy)."""
    micro_batches: int = 2
    """Groups a step's problems are cut into; group j executes while group j+1 generates."""
    cpus_per_worker: float = 1.0
    """CPUs each actor reserves in Ray's accounting."""
    gpus_per_worker: float = 0.0
    """GPUs each actor reserves (vLLM needs one)."""
    threads: int = 1
    """torch threads inside each actor."""
    generator: str = "loop"
    """"loop" (own KV-cache loop, the default), "hf" (model.generate) or "vllm" (coderl.models.vllm_backend)."""
    batch_size: int = 64
    """Sequences decoded together by the "loop"/"hf" generators."""
    vllm_kwargs: dict[str, Any] | None = None
    """Extra arguments for vllm.LLM (generator "vllm"), e.g. {"gpu_memory_utilization": 0.3}."""

    def __post_init__(self) -> None:
        if self.generator not in GENERATORS:
            raise ValueError(f"RolloutWorkerConfig.generator must be one of {GENERATORS}, got {self.generator!r}")
        if self.workers < 1 or self.micro_batches < 1 or self.threads < 1 or self.batch_size < 1:
            raise ValueError("RolloutWorkerConfig: workers, micro_batches, threads and batch_size must be >= 1")
        if self.generator == "vllm" and self.gpus_per_worker <= 0:
            raise ValueError("RolloutWorkerConfig: generator='vllm' runs on a GPU; set gpus_per_worker (e.g. 1)")
        if self.vllm_kwargs and self.generator != "vllm":
            raise ValueError("RolloutWorkerConfig.vllm_kwargs only applies to generator='vllm'")


class GenerationWorker:
    """Runs on a Ray worker: a copy of the policy, refreshed by :meth:`set_weights`, sampling completions."""

    def __init__(self, model, tokenizer, cfg: RolloutWorkerConfig):
        import torch

        torch.set_num_threads(cfg.threads)
        self.cfg, self.tokenizer, self.version = cfg, tokenizer, -1
        if cfg.generator == "vllm":
            from coderl.models.vllm_backend import VLLMGenerator

            self.model, self.gen = model, VLLMGenerator.from_model(model, tokenizer, **(cfg.vllm_kwargs or {}))
        else:
            self.model, self.gen = model.eval(), None

    def set_weights(self, state: dict[str, Any], version: int) -> int:
        if self.gen is not None:
            self.gen.load_weights(state)
        else:
            self.model.load_state_dict(state, strict=True)
        self.version = version
        return version

    def generate(self, prompts: list[str], n: int, sampling: dict[str, Any], version: int) -> list[list[Any]]:
        from coderl.models.generate import SamplingConfig, generate

        if version != self.version:  # a step must never sample from the previous step's weights
            raise RuntimeError(f"generation worker holds weights v{self.version}, asked for v{version}")
        cfg = SamplingConfig(**sampling)
        if self.gen is not None:
            return self.gen.generate(prompts, n, cfg)
        return generate(self.model, self.tokenizer, prompts, n, cfg, batch_size=self.cfg.batch_size,
                        backend=self.cfg.generator, with_logprobs=True)


class RayRollouts:
    """Phases 2-3 of ``train_rl`` on Ray generation workers, execution overlapped with generation.

    ``policy`` / ``tokenizer``: the trainer's model (copied to each worker once; weights are pushed every step).
    Use as a context manager or call :meth:`start` / :meth:`close`; Ray must be initialised (``ray.init``) or
    ``address`` given.
    """

    def __init__(self, policy, tokenizer, cfg: RolloutWorkerConfig | None = None, address: str | None = None):
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise ImportError("ray is not installed; install it with `pip install 'coderl[ray]'`")
        if getattr(policy.config, "is_encoder_decoder", False) and (cfg and cfg.generator == "vllm"):
            raise ValueError("the vLLM generator serves causal models only; use generator='hf' for seq2seq")
        self.cfg = cfg or RolloutWorkerConfig()
        self.policy, self.tokenizer, self.address = policy, tokenizer, address
        self.workers: list[Any] = []
        self.version = 0
        self.last_stats: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def __enter__(self) -> RayRollouts:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        if self.workers:
            return
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        model_ref = ray.put(copy.deepcopy(self.policy).cpu())
        opts = {"num_cpus": self.cfg.cpus_per_worker, "num_gpus": self.cfg.gpus_per_worker, "max_restarts": 0}
        self.workers = [ray.remote(GenerationWorker).options(**opts).remote(model_ref, self.tokenizer, self.cfg)
                        for _ in range(self.cfg.workers)]
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="coderl-exec")

    def close(self) -> None:
        import ray

        for w in self.workers:
            ray.kill(w)
        self.workers = []
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def sync(self, policy) -> tuple[float, float]:
        """Push ``policy``'s weights to every worker; returns (seconds until all loaded them, megabytes)."""
        import ray

        t0 = time.perf_counter()
        state = {k: v.detach().to("cpu", copy=True) for k, v in policy.state_dict().items()}
        mb = sum(v.numel() * v.element_size() for v in state.values()) / 2**20
        self.version += 1
        ref = ray.put(state)
        ray.get([w.set_weights.remote(ref, self.version) for w in self.workers])
        return time.perf_counter() - t0, mb

    def rollouts(self, policy, batch: Sequence[Problem], cfg, seed: int, executor) -> list[Rollout]:
        """Sample ``cfg.samples_per_problem`` programs per problem of ``batch`` and execute them; grouped by
        problem in ``batch`` order, as :func:`coderl.rl.loop.rollout` returns them."""
        import ray

        if not self.workers:
            self.start()
        assert self._pool is not None
        t_start = time.perf_counter()
        sync_s, sync_mb = self.sync(policy)
        n = cfg.samples_per_problem
        m = min(self.cfg.micro_batches, len(batch))
        bounds = [(len(batch) * j // m, len(batch) * (j + 1) // m) for j in range(m)]
        sampling = {"max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature, "top_p": cfg.top_p}
        t_gen = time.perf_counter()
        refs = {}
        for j, (a, b) in enumerate(bounds):
            # one group: the single-process seed; more groups: one stream each (same distribution)
            s = dict(sampling, seed=seed if m == 1 else seed + 7919 * j)
            w = self.workers[j % len(self.workers)]
            refs[w.generate.remote([format_prompt(p) for p in batch[a:b]], n, s, self.version)] = j
        groups: list[list[Rollout] | None] = [None] * m
        futures = []
        exec_s = [0.0]

        def run(rs: list[Rollout]) -> None:
            t = time.perf_counter()
            execute(executor, rs)
            exec_s[0] += time.perf_counter() - t

        pending = list(refs)
        gen_end = t_gen
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            j = refs[ready[0]]
            a, b = bounds[j]
            outs = ray.get(ready[0])
            gen_end = time.perf_counter()
            groups[j] = [Rollout(p, c.prompt_ids, c.token_ids, c.text, finished=c.finished,
                                 sampler_logprobs=c.logprobs) for p, cs in zip(batch[a:b], outs, strict=True)
                         for c in cs]
            futures.append(self._pool.submit(run, groups[j]))
        for f in futures:
            f.result()  # re-raises an executor error here, in the trainer
        wall = time.perf_counter() - t_start
        gen_s = gen_end - t_gen
        self.last_stats = {"sync_s": sync_s, "sync_mb": sync_mb, "gen_s": gen_s, "exec_s": exec_s[0],
                           "rollout_s": wall, "overlap_s": max(0.0, sync_s + gen_s + exec_s[0] - wall)}
        self.history.append(dict(self.last_stats))
        return [r for g in groups if g is not None for r in g]
