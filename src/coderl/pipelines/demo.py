"""The embedded default: train a tiny code model from scratch on the procedural task family, then improve it
with RL from execution feedback, on CPU, in minutes.

Stages: build tasks → train tokenizer → SFT (data with habitual bugs) → evaluate → critic → RL → evaluate,
plus the control arm (the SFT model trained the same extra wall time with SFT only). Writes
``summary.json``, ``report.md`` and PNG plots to the output directory.
"""

from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coderl.config import apply_overrides, build, deep_merge, read_yaml
from coderl.rl.config import PRESETS, RLConfig
from coderl.sandbox.schema import OUTCOME_CLASSES
from coderl.train.sft import SFTConfig


@dataclass
class ModelShape:
    """The from-scratch GPT-2 (≈0.5M parameters with a 512-token vocabulary)."""

    vocab_size: int = 512
    n_layer: int = 4
    n_embd: int = 96
    n_head: int = 4
    n_positions: int = 128


@dataclass
class DemoCriticSettings:
    """How the demo's critic's training data is made and how long it trains."""

    problems: int = 200
    """Train-split problems whose sampled programs (labelled by the executor) train the critic."""
    samples_per_problem: int = 4
    epochs: int = 2
    lr: float = 2e-3
    batch_size: int = 64
    holdout: float = 0.2
    """Fraction of the critic data kept aside to report its accuracy, per-class recall and calibration."""
    balance_classes: bool = False
    """Weight the critic's cross-entropy by inverse class frequency, so that rare outcomes (compile and runtime
    errors) are learned too."""


def _DEMO_RL() -> RLConfig:  # noqa: N802 (a factory standing for a constant)
    return RLConfig(algo="grpo", steps=80, problems_per_step=16, samples_per_problem=4, lr=1.5e-4, sft_weight=0.5,
                    sft_batch=16, max_new_tokens=48, checkpoint_every=10, time_budget_s=40.0)


@dataclass
class DemoConfig:
    """Everything the demo does, in one place; saved with every checkpoint and in summary.json."""

    seed: int = 0
    algo: str = "rloo"
    """RL algorithm, a name of coderl.rl.config.PRESETS: "rloo" (leave-one-out group baseline; the default: the
    best held-out pass@1 in the comparison of docs/BENCHMARKS.md), "grpo", "ppo", "dapo", "gspo", "coderl"
    (greedy baseline, critic-weighted tokens), "coderl-nocritic", "grpo-critic", "critic-baseline". Its settings
    fill the ``rl`` fields left at the demo's defaults."""
    eval_tasks: int = 160
    """Held-out test-split tasks used for every evaluation."""
    eval_samples: int = 10
    """Samples per task at temperature 1 for pass@1 / pass@5."""
    p_habitual: float = 0.8
    """Probability that a task of a template with a habitual bug shows that bug in the SFT data."""
    p_random: float = 0.15
    """Probability of a random bug in the other SFT examples."""
    sft_rounds: int = 2
    """Independent draws of the SFT data over the train split (more examples of the same mixture)."""
    model: ModelShape = field(default_factory=ModelShape)
    sft: SFTConfig = field(default_factory=lambda: SFTConfig(lr=5e-3, batch_size=64, epochs=5.0, min_lr_ratio=0.0))
    critic: DemoCriticSettings = field(default_factory=DemoCriticSettings)
    rl: RLConfig = field(default_factory=lambda: _DEMO_RL())
    workers: int | None = None
    """Executor workers (default: number of cores)."""

    def __post_init__(self) -> None:
        if self.algo not in PRESETS:
            raise ValueError(f"DemoConfig.algo must be one of {', '.join(PRESETS)}, got {self.algo!r}")
        default = _DEMO_RL().to_dict()
        rl = self.rl.to_dict()
        preset = PRESETS[self.algo]
        if rl["algo"] != default["algo"] and rl["algo"] != preset["algo"]:
            raise ValueError(f"rl.algo is {rl['algo']!r} but algo {self.algo!r} runs {preset['algo']!r}; choose the "
                             "algorithm with the top-level algo (see coderl.rl.config.PRESETS)")
        # the preset fills what was left at the demo's defaults; a value set explicitly in rl stays
        self.rl = RLConfig.from_dict({**rl, **{k: v for k, v in preset.items() if rl[k] == default[k]}})
        if self.eval_samples < 5:
            raise ValueError("DemoConfig.eval_samples must be >= 5 to report pass@5")

    @classmethod
    def quick(cls, **kw: Any) -> DemoConfig:
        """A much smaller run for CI (about a minute); the figures are not meant to be compared. ``kw`` are
        settings on top of :data:`QUICK` (e.g. ``seed=1``)."""
        return cls.from_dict(deep_merge(QUICK, kw), where="quick")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> DemoConfig:
        """Build from a (possibly partial) nested mapping, e.g. a YAML preset, as every config is built
        (:func:`coderl.config.build`): unknown keys and wrong types are errors naming the field."""
        return build(cls, d, where)


QUICK: dict[str, Any] = {
    "eval_tasks": 48, "eval_samples": 5, "sft_rounds": 1,
    "sft": {"lr": 3e-3, "epochs": 2.0, "min_lr_ratio": 0.1},
    "critic": {"problems": 48, "samples_per_problem": 2, "epochs": 1},
    "rl": {"steps": 4, "problems_per_step": 8, "samples_per_problem": 2, "lr": 1e-4, "sft_batch": 32,
           "checkpoint_every": 2, "time_budget_s": None},
}
"""``coderl demo --quick``: the settings it changes from the defaults."""


def load_demo_config(path: str | Path | None = None, overrides: list[str] = (), quick: bool = False) -> DemoConfig:
    """The demo's configuration: the defaults (or :data:`QUICK`), then a YAML preset (see configs/demo.yaml),
    then ``key=value`` overrides (the command line's, flags included), checked like the recipe's."""
    data = deep_merge(QUICK if quick else {}, read_yaml(path) if path is not None else {})
    where = str(path) if path is not None else "quick" if quick else "defaults"
    if overrides:
        data = apply_overrides(data, list(overrides))
        where += " + overrides"
    return DemoConfig.from_dict(data, where=where)


def run_demo(cfg: DemoConfig, out_dir: str | Path, progress: bool = True, resume: bool = False,
             log=print) -> dict[str, Any]:
    import torch

    from coderl.eval.policy import evaluate_policy
    from coderl.models.actor import save_checkpoint, tiny_gpt2
    from coderl.models.tokenizer import train_bpe
    from coderl.rl.loop import train_rl
    from coderl.sandbox import Executor
    from coderl.sandbox.server import PRELOAD
    from coderl.tasks.family import corpus_text, generate_tasks
    from coderl.tasks.prompt import format_prompt
    from coderl.train.checkpoint import write_json
    from coderl.train.sft import train_sft

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", cfg.to_dict())
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    secs: dict[str, float] = {}
    t_all = time.monotonic()

    def stage(name: str):
        return _Stage(name, secs, log)

    with stage("tasks"):
        train_tasks = generate_tasks("train", None, seed=cfg.seed)
        test_tasks = generate_tasks("test", cfg.eval_tasks, seed=cfg.seed)
        log(f"tasks: {len(train_tasks)} train, {len(test_tasks)} held-out test")
    with stage("tokenizer"):
        tokenizer = train_bpe([format_prompt(p) for p in train_tasks] + [corpus_text(train_tasks)],
                              vocab_size=cfg.model.vocab_size)
    with stage("sft"):
        model = tiny_gpt2(tokenizer, n_layer=cfg.model.n_layer, n_embd=cfg.model.n_embd, n_head=cfg.model.n_head,
                          n_positions=cfg.model.n_positions, seed=cfg.seed)
        records, pairs = demo_sft_data(train_tasks, cfg)
        mix = {}
        for r in records:
            kind = r.kind.split(":")[0]
            mix[kind] = mix.get(kind, 0) + 1
        log(f"SFT data: {len(pairs)} programs ({', '.join(f'{k} {v}' for k, v in sorted(mix.items()))}); "
            f"model {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
        sft_hist = train_sft(model, tokenizer, pairs, cfg.sft, progress=progress)
        save_checkpoint(model, tokenizer, out / "sft", extra={"config": cfg.to_dict(), "stage": "sft"})
    # The family's programs use builtins only: a server without numpy forks faster.
    with Executor(workers=cfg.workers, timeout=2.0, preload=tuple(m for m in PRELOAD if m != "numpy")) as ex:
        ev = dict(n=cfg.eval_samples, max_new_tokens=cfg.rl.max_new_tokens, seed=cfg.seed + 1)
        with stage("eval_before"):
            before = evaluate_policy(model, tokenizer, test_tasks, ex, **ev)
            log(f"before RL: pass@1 {before['pass@1']:.3f} pass@5 {before['pass@5']:.3f} "
                f"greedy {before['greedy']:.3f}")
        # The critic is trained whichever algorithm runs: "coderl" weights tokens with it, and its accuracy is
        # part of every report (critic sampling at inference uses it too).
        with stage("critic"):
            critic, critic_metrics = _train_demo_critic(model, tokenizer, train_tasks, ex, cfg, progress)
            log(f"critic: held-out accuracy {critic_metrics['accuracy']:.3f} on {critic_metrics['n']} programs")
            critic.save(out / "critic", tokenizer)  # for critic sampling at inference (coderl generate)
        control = copy.deepcopy(model)
        with stage("rl"):
            history = train_rl(model, tokenizer, train_tasks, ex, cfg.rl,
                               critic=critic if cfg.rl.needs_critic else None, sft_pairs=pairs,
                               out_dir=out / "rl", resume=resume, progress=progress,
                               extra_config={"demo": cfg.to_dict()})
        with stage("control"):
            ctl_cfg = SFTConfig(lr=cfg.rl.lr, batch_size=cfg.sft.batch_size, epochs=0.0, warmup_steps=0,
                                time_budget_s=secs["rl"], seed=cfg.seed + 1)
            ctl_hist = train_sft(control, tokenizer, pairs, ctl_cfg, progress=progress)
        with stage("eval_after"):
            after = evaluate_policy(model, tokenizer, test_tasks, ex, **ev)
            ctl = evaluate_policy(control, tokenizer, test_tasks, ex, **ev)
            log(f"after RL:  pass@1 {after['pass@1']:.3f} pass@5 {after['pass@5']:.3f} greedy {after['greedy']:.3f}")
            log(f"control:   pass@1 {ctl['pass@1']:.3f} pass@5 {ctl['pass@5']:.3f} greedy {ctl['greedy']:.3f}")
    save_checkpoint(model, tokenizer, out / "final", extra={"config": cfg.to_dict(), "stage": "rl"})
    secs["total"] = time.monotonic() - t_all
    pick = ("pass@1", "pass@5", "greedy")
    summary = {
        "before": {k: before[k] for k in pick}, "after": {k: after[k] for k in pick},
        "control": {k: ctl[k] for k in pick},
        "outcomes_before": before["outcomes"], "outcomes_after": after["outcomes"],
        "outcomes_control": ctl["outcomes"],
        "critic": critic_metrics, "seconds": {k: round(v, 1) for k, v in secs.items()},
        "algorithm": cfg.algo, "seed": cfg.seed, "eval": {"tasks": len(test_tasks), "samples": cfg.eval_samples},
        "sft": {"steps": sft_hist["steps"], "final_loss": sft_hist["loss"][-1] if sft_hist["loss"] else None},
        "control_sft_steps": ctl_hist["steps"], "rl_steps": len(history),
        "rl_history": [{k: h[k] for k in ("step", "reward", "pass_rate", "loss_pg", "loss_sft")} for h in history],
    }
    write_json(out / "summary.json", summary)
    (out / "report.md").write_text(_report(summary, cfg))
    _plots(summary, out)
    log(f"wrote {out / 'summary.json'} and {out / 'report.md'} in {secs['total']:.0f}s")
    return summary


def demo_sft_data(train_tasks, cfg: DemoConfig) -> tuple[list, list[tuple[str, str]]]:
    """The demo's SFT records (references, habitual and random bugs) and their (prompt, program) pairs; the RL
    stage's supervised term and the SFT-only control use the same pairs."""
    from coderl.tasks.family import sft_records
    from coderl.tasks.prompt import format_prompt

    by_id = {p.task_id: p for p in train_tasks}
    records = [r for k in range(cfg.sft_rounds)
               for r in sft_records(train_tasks, random.Random(cfg.seed * 7919 + k), cfg.p_habitual, cfg.p_random)]
    return records, [(format_prompt(by_id[r.task_id]), r.program) for r in records]


def demo_critic_data(model, tokenizer, tasks, ex, cfg: DemoConfig) -> tuple[list, list]:
    """(train, held-out) examples ``(prompt, program, label)`` for the critic: programs sampled from the SFT model
    on train tasks, labelled by the executor, plus the references (labelled passed)."""
    from coderl.models.critic import outcome_label
    from coderl.models.generate import SamplingConfig, generate
    from coderl.tasks.prompt import format_prompt

    rng = random.Random(cfg.seed + 17)
    chosen = rng.sample(list(tasks), min(cfg.critic.problems, len(tasks)))
    prompts = [format_prompt(p) for p in chosen]
    outs = generate(model, tokenizer, prompts, cfg.critic.samples_per_problem,
                    SamplingConfig(max_new_tokens=cfg.rl.max_new_tokens, temperature=1.0, seed=cfg.seed + 3))
    items = [(pr, p, c.text) for pr, p, cs in zip(prompts, chosen, outs, strict=True) for c in cs]
    results = ex.run([p.request(str(i), p.program(t)) for i, (_, p, t) in enumerate(items)])
    data = [(pr, t, outcome_label(r.outcome)) for (pr, _, t), r in zip(items, results, strict=True)]
    data += [(pr, p.solutions[0], outcome_label("passed")) for pr, p in zip(prompts, chosen, strict=True)]
    rng.shuffle(data)
    n_hold = int(len(data) * cfg.critic.holdout)
    return data[n_hold:], data[:n_hold]


def _train_demo_critic(model, tokenizer, tasks, ex, cfg: DemoConfig, progress: bool):
    from coderl.models.critic import Critic, evaluate_critic
    from coderl.train.critic import train_critic

    train, held = demo_critic_data(model, tokenizer, tasks, ex, cfg)
    critic = Critic.from_model(model, n_classes=4)
    train_critic(critic, tokenizer, train, epochs=cfg.critic.epochs, lr=cfg.critic.lr,
                 batch_size=cfg.critic.batch_size, seed=cfg.seed, progress=progress,
                 balance_classes=cfg.critic.balance_classes)
    metrics = evaluate_critic(critic, tokenizer, held)
    metrics["labels"] = list(OUTCOME_CLASSES)
    return critic, metrics


class _Stage:
    def __init__(self, name: str, secs: dict[str, float], log):
        self.name, self.secs, self.log = name, secs, log

    def __enter__(self):
        self.t = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.secs[self.name] = time.monotonic() - self.t


def _report(s: dict[str, Any], cfg: DemoConfig) -> str:
    def row(name: str, d: dict[str, float]) -> str:
        return f"| {name} | {d['pass@1']:.3f} | {d['pass@5']:.3f} | {d['greedy']:.3f} |"

    lines = [
        f"# coderl demo (algorithm: {s['algorithm']}, seed {s['seed']})", "",
        f"Held-out test tasks: {s['eval']['tasks']}, {s['eval']['samples']} samples each at temperature 1.", "",
        "| model | pass@1 | pass@5 | greedy |", "|---|---|---|---|",
        row("SFT (before RL)", s["before"]), row(f"after RL ({s['algorithm']})", s["after"]),
        row("control (SFT only, same extra time)", s["control"]), "",
        "Outcome mix of the samples:", "", "| outcome | before | after | control |", "|---|---|---|---|",
    ]
    for o in OUTCOME_CLASSES:
        lines.append(f"| {o} | {s['outcomes_before'][o]:.3f} | {s['outcomes_after'][o]:.3f} | "
                     f"{s['outcomes_control'][o]:.3f} |")
    if s["critic"]:
        c = s["critic"]
        lines += ["", f"Critic: held-out accuracy {c['accuracy']:.3f} on {c['n']} programs; expected calibration "
                  f"error {c.get('ece', float('nan')):.3f}, Brier score {c.get('brier', float('nan')):.3f}.", "",
                  "| class | held-out programs | recall | precision |", "|---|---|---|---|"]
        for i, name in enumerate(c.get("class_names", [])):
            rec, prec = c["recall"][i], c["precision"][i]
            lines.append(f"| {name} | {sum(c['confusion'][i])} | {rec:.3f} | {prec:.3f} |")
        lines += ["", "Confusion matrix (rows: true class, columns: predicted; compile, runtime, failed, passed):",
                  "", "```"]
        lines += [" ".join(f"{v:5d}" for v in r) for r in c["confusion"]]
        lines.append("```")
    lines += ["", "Seconds per stage: " + ", ".join(f"{k} {v}" for k, v in s["seconds"].items()), "",
              "![reward](rl_curve.png)", "", "![outcomes](outcomes.png)", "", "Configuration:", "", "```json",
              json.dumps(cfg.to_dict(), indent=1), "```", ""]
    return "\n".join(lines)


def _plots(s: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = s["rl_history"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if hist:
        steps = [h["step"] for h in hist]
        ax.plot(steps, [h["reward"] for h in hist], label="mean reward")
        ax.plot(steps, [h["pass_rate"] for h in hist], label="pass rate of samples")
    ax.set_xlabel("RL step")
    ax.set_title(f"RL ({s['algorithm']}), seed {s['seed']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "rl_curve.png", dpi=100)
    plt.close(fig)
    outcomes = OUTCOME_CLASSES
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.27
    for j, (name, key) in enumerate((("before", "outcomes_before"), ("after", "outcomes_after"),
                                     ("control", "outcomes_control"))):
        ax.bar([i + (j - 1) * width for i in range(4)], [s[key][o] for o in outcomes], width, label=name)
    ax.set_xticks(range(4), [o.replace("_", " ") for o in outcomes])
    ax.set_ylabel("fraction of samples")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "outcomes.png", dpi=100)
    plt.close(fig)
