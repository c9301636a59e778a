"""The CodeRL recipe on real models and benchmarks: one configuration, one section per concern.

A recipe config is a YAML file (see ``configs/apps_codet5.yaml``, ``configs/mbpp_causal.yaml``, and
``configs/mbpp_chat.yaml`` for an instruct model) with the sections below; every field is documented once, on its
dataclass. ``key=value`` overrides on the command line
(``sampling.n=4``, ``model.lora.enabled=true``, ``rl.lr=1e-5``) are parsed as YAML values and checked like the
file: an unknown key or a value of the wrong type is an error naming the field. The resolved configuration is
written next to every stage's output and into every checkpoint.

Stages (``coderl.pipelines.stages``) and the files they leave in ``out``::

    sft          coderl train --stage sft     out/sft/checkpoints/, out/sft/final/
    sample       coderl sample                out/samples.jsonl (+ out/baseline.jsonl: greedy programs)
    exec         (run by the chain; or coderl eval)  out/samples.verdicts.jsonl, out/baseline.verdicts.jsonl
    critic train coderl critic train          out/critic/
    critic score coderl critic score          out/scored.jsonl
    rl           coderl train --stage rl      out/rl/checkpoints/, out/rl/final/, out/rl/history.json
    repair       coderl train --stage repair  out/repair/pairs.jsonl, out/repair/final/ (critic sampling's repair model)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coderl.config import apply_overrides, build, read_yaml
from coderl.rl.config import RLConfig
from coderl.scale import BACKENDS
from coderl.tasks.prompt import DEFAULT_SYSTEM, PROMPT_FORMATS
from coderl.train.precision import PRECISIONS
from coderl.train.sft import SFTConfig


@dataclass
class LoRASettings:
    """Optional LoRA adapters on the actor for the training stages (needs ``pip install 'coderl[lora]'``)."""

    enabled: bool = False
    """Train LoRA adapters instead of all weights; the final model is exported with the adapters merged."""
    r: int = 8
    """Rank of the adapters."""
    alpha: int = 16
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    dropout: float = 0.05
    target_modules: list[str] | None = None
    """Names of the linear layers to adapt; null = peft's default for the architecture."""

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError("model.lora.r must be >= 1")


@dataclass
class ModelSettings:
    """The actor: which model, on which device, in which precision."""

    path: str = ""
    """A local model directory (config.json + weights + tokenizer files, as save_pretrained writes) or a hub id."""
    kind: str = "auto"
    """"auto" (from config.json), "causal" (AutoModelForCausalLM) or "seq2seq" (AutoModelForSeq2SeqLM, CodeT5)."""
    dtype: str | None = None
    """Weights dtype when loading (null = float32). Keep float32 for training; bf16 weights suit sampling only."""
    device: str = "auto"
    """"auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:1", ..."""
    lora: LoRASettings = field(default_factory=LoRASettings)
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass of every training stage instead of keeping them: less memory
    for long prompts and programs, about a third more compute."""
    use_sft_model: bool = True
    """The stages after SFT (sample, critic, critic score, RL, repair) start from this run's SFT model
    (OUT/sft/final) when it was fine-tuned from model.path; false = always from model.path. Each says which."""

    def __post_init__(self) -> None:
        if self.kind not in ("auto", "causal", "seq2seq"):
            raise ValueError(f"model.kind must be 'auto', 'causal' or 'seq2seq', got {self.kind!r}")


@dataclass
class DataSettings:
    """Which benchmark and which problems."""

    dataset: str = "apps"
    """"apps", "mbpp", "humaneval" or a problems .jsonl file (coderl data export)."""
    path: str | None = None
    """A local copy in the benchmark's own format (APPS: the folder tree; MBPP: mbpp.jsonl); null = the HF hub."""
    train_split: str = "train"
    """Split used for sampling, the critic, SFT and RL."""
    eval_split: str = "test"
    limit: int | None = None
    """Use only the first N problems of each split (quick runs)."""
    solutions_per_problem: int = 1
    """Ground-truth solutions per problem used as SFT pairs (and as "passed" critic examples)."""

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError("data.limit must be >= 1 or null")
        if self.solutions_per_problem < 0:
            raise ValueError("data.solutions_per_problem must be >= 0")


@dataclass
class PromptSettings:
    """How problems are put to the actor, the same in SFT, sampling, the critic, RL and repair sampling
    (``coderl.tasks.prompt.Prompter``)."""

    format: str = "plain"
    """"plain": CodeRL's prompt layout, the reply is the program (base and code-completion models). "chat": the
    system message and the problem rendered with the tokenizer's chat template (instruct models); the code is
    extracted from the reply (fenced blocks, prose around them) and SFT teaches the solution in a ```python fence."""
    system: str = DEFAULT_SYSTEM
    """With format "chat": the system message ("" = none, for templates that reject a system turn)."""

    def __post_init__(self) -> None:
        if self.format not in PROMPT_FORMATS:
            raise ValueError(f"prompt.format must be one of {', '.join(PROMPT_FORMATS)}, got {self.format!r}")


@dataclass
class SamplingSettings:
    """How `coderl sample` draws programs (the paper: 20 per training problem; T=0.6 on APPS, 1.2 on MBPP)."""

    n: int = 20
    """Programs per problem."""
    temperature: float = 0.6
    top_p: float = 0.95
    max_new_tokens: int = 512
    batch_size: int = 32
    """Sequences (problems x samples) decoded together."""
    problems_per_chunk: int = 8
    """Problems sampled and written together; a resumed run restarts at the first unfinished chunk."""
    greedy_baseline: bool = True
    """Also write one greedy program per problem (baseline.jsonl): CodeRL's baseline return r(W^b)."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1 or self.batch_size < 1 or self.problems_per_chunk < 1 or self.max_new_tokens < 1:
            raise ValueError("sampling.n, batch_size, problems_per_chunk and max_new_tokens must be >= 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("sampling.temperature must be >= 0 and sampling.top_p in (0, 1]")


@dataclass
class ExecSettings:
    """The sandboxed executor that labels programs."""

    workers: int | None = None
    """Sandbox workers (null = number of cores)."""
    timeout: float = 4.0
    """Seconds per test (CodeRL: 4)."""
    checker: str = "default"
    """stdout comparison: "default" (strict) or "apps" (APPS/CodeRL lenient rules)."""
    memory_mb: int = 2048
    backend: str = "local"
    """"local" (sandbox workers on this machine) or "ray" (a sandboxed Executor per Ray node, `pip install
    'coderl[ray]'`; docs/scaling.md). Either gives the same verdicts."""
    address: str | None = None
    """With backend "ray": the cluster to join ("auto", "ray://head:10001"); null = start a local Ray instance."""

    def __post_init__(self) -> None:
        if self.checker not in ("default", "apps"):
            raise ValueError(f"execution.checker must be 'default' or 'apps', got {self.checker!r}")
        if self.timeout <= 0:
            raise ValueError("execution.timeout must be > 0")
        if self.backend not in BACKENDS:
            raise ValueError(f"execution.backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.address is not None and self.backend != "ray":
            raise ValueError("execution.address is for backend 'ray'; set execution.backend: ray (or drop the address)")


@dataclass
class CriticSettings:
    """The critic: what it is built on and how it trains."""

    backbone: str = "actor"
    """"actor": a head on a copy of the actor's backbone (encoder for seq2seq); otherwise the path of a separate
    (smaller) model whose backbone is used, e.g. CodeT5-base for a CodeT5-large actor as in the paper. Per-token
    weights for RL need the critic to share the actor's tokenizer."""
    n_classes: int = 4
    """4 (compile error, runtime error, failed test, passed) or 2 (not passed, passed)."""
    epochs: int = 3
    lr: float = 2e-5
    batch_size: int = 16
    max_length: int | None = None
    """Longest critic input (prompt + program) in tokens; null = the backbone's limit."""
    pool: str = "max"
    """Sequence prediction from the token logits: "max" or "mean" over the program tokens."""
    token_loss_weight: float = 0.0
    """Weight of an extra per-token cross-entropy term."""
    balance_classes: bool = False
    include_solutions: bool = True
    """Add the ground-truth solutions as "passed" examples."""
    seed: int = 0
    precision: str = "fp32"
    """Autocast dtype of the critic's training passes, as sft.precision and rl.precision: "fp32", "bf16", "fp16"."""
    grad_accum: int = 1
    """Micro-batches per critic batch (1 <= grad_accum <= batch_size), as sft.grad_accum."""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"critic.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not 1 <= self.grad_accum <= self.batch_size:
            raise ValueError("critic.grad_accum must be between 1 and critic.batch_size")
        if self.n_classes not in (2, 4):
            raise ValueError("critic.n_classes must be 2 or 4")
        if self.pool not in ("max", "mean"):
            raise ValueError("critic.pool must be 'max' or 'mean'")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("critic.epochs and critic.batch_size must be >= 1")


@dataclass
class RepairSettings:
    """The repair model of critic sampling (``coderl train --stage repair``; see docs/critic_sampling.md): trained
    on the actor's failed samples of training problems, each paired with the nearest passing program."""

    actor: str | None = None
    """The actor whose failures are repaired; null = the run's RL model (out/rl/final), else its SFT model
    (out/sft/final), else model.path."""
    samples_per_problem: int = 4
    """Programs sampled per training problem to find failures."""
    temperature: float = 1.0
    max_new_tokens: int | None = None
    """Null = sampling.max_new_tokens."""
    max_problems: int | None = None
    """Use at most this many training problems (a seeded draw); null = all."""
    positions: int = 1024
    """A GPT-2 repair model gets this many positions (its input holds the prompt, the failed program and the
    feedback); other architectures keep the actor's and drop longer pairs."""
    from_scratch: bool = False
    """A fresh tiny GPT-2 on the actor's tokenizer instead of the actor's weights (quick experiments)."""
    train: SFTConfig = field(default_factory=lambda: SFTConfig(lr=2e-5, batch_size=8, epochs=2.0, warmup_steps=10))
    seed: int = 0

    def __post_init__(self) -> None:
        if self.samples_per_problem < 1:
            raise ValueError("repair.samples_per_problem must be >= 1")
        if self.max_problems is not None and self.max_problems < 1:
            raise ValueError("repair.max_problems must be >= 1 or null")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ValueError("repair.max_new_tokens must be >= 1 or null")
        if self.positions < 16:
            raise ValueError("repair.positions must be >= 16")


@dataclass
class LogSettings:
    """Where the training stages' scalars go. Tensorboard files are always written (OUT/<stage>/tensorboard); on a
    terminal progress bars show, otherwise a plain progress line every CODERL_LOG_EVERY seconds (default 30)."""

    wandb_project: str | None = None
    """Also log the scalars of SFT, critic and RL to this Weights & Biases project (`pip install wandb`; the usual
    WANDB_* variables apply, e.g. WANDB_MODE=offline); null = no wandb."""


@dataclass
class RecipeConfig:
    """The whole recipe. ``out`` holds every stage's files (see the module docstring)."""

    out: str = "runs/recipe"
    """Run directory."""
    sft_checkpoint_every: int = 50
    """`coderl train --stage sft` (and `--stage repair`, which fine-tunes the same way): save a resumable checkpoint
    every N steps (and at the end); 0 = only at the end."""
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    prompt: PromptSettings = field(default_factory=PromptSettings)
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    execution: ExecSettings = field(default_factory=ExecSettings)
    critic: CriticSettings = field(default_factory=CriticSettings)
    sft: SFTConfig = field(default_factory=lambda: SFTConfig(lr=2e-5, batch_size=8, epochs=1.0, warmup_steps=10))
    rl: RLConfig = field(default_factory=lambda: RLConfig(lr=2e-6, steps=100, mode="offline", sft_weight=1.0,
                                                          sft_batch=8, checkpoint_every=20))
    repair: RepairSettings = field(default_factory=RepairSettings)
    log: LogSettings = field(default_factory=LogSettings)

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def recipe_from_dict(data: dict[str, Any], where: str = "config") -> RecipeConfig:
    """Build and validate; YAML files may leave out any field or section (the defaults above apply)."""
    return build(RecipeConfig, data, where)


def load_recipe(path: str | Path | None, overrides: list[str] = ()) -> RecipeConfig:
    """A recipe from a YAML file (or only defaults, ``path=None``) plus ``key=value`` overrides."""
    data = read_yaml(path) if path is not None else {}
    where = str(path) if path is not None else "command line"
    if overrides:
        data = apply_overrides(data, list(overrides))
        where = f"{where} + overrides" if path is not None else "overrides"
    return recipe_from_dict(data, where)


def save_resolved(cfg: RecipeConfig, path: str | Path) -> Path:
    """Write the resolved configuration (YAML) to ``path``; it loads back with :func:`load_recipe`."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(cfg.to_yaml(), encoding="utf-8")
    tmp.replace(p)
    return p
