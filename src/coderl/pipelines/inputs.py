"""What the recipe's stages load from the config: the training split, the actor (the run's SFT model or
``model.path``, LoRA, device), its prompt format, the supervised pairs and the executor; and the log lines that
warn about long prompts and a step's memory."""

from __future__ import annotations

from pathlib import Path

from coderl.pipelines.recipe import RecipeConfig
from coderl.pipelines.rundir import SFT_DIR, Log, StageError, quiet
from coderl.tasks.problem import Problem
from coderl.tasks.prompt import Prompter


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise StageError(f"model.device is {name!r} but no CUDA device is available; use 'auto' or 'cpu'")
    return name


def actor_path(cfg: RecipeConfig, stage: str, log: Log = quiet) -> str:
    """The actor every stage after SFT starts from: the run's SFT model (``OUT/sft/final``) when it was trained
    from ``model.path`` (and ``model.use_sft_model``), else ``model.path``. Says which (so an RL run never silently
    starts from the base model of a run that has an SFT model)."""
    from coderl.models.actor import load_extra

    final = cfg.out_dir / SFT_DIR / "final"
    if cfg.model.path and final.is_dir() and Path(cfg.model.path).expanduser().resolve() == final.resolve():
        log(f"{stage}: actor {cfg.model.path} (model.path: this run's SFT model)")
        return cfg.model.path
    if cfg.model.use_sft_model and (final / "config.json").is_file():
        base = load_extra(final).get("config", {}).get("model", {}).get("path")
        if base == cfg.model.path:
            log(f"{stage}: actor {final} (this run's SFT model, fine-tuned from model.path {cfg.model.path})")
            return str(final)
        log(f"{stage}: {final} was fine-tuned from {base!r}, not from model.path; it is not used")
    if not cfg.model.path:
        raise StageError("no model given: set model.path in the config (or model.path=DIR on the command line)")
    why = "" if final.is_dir() else f"; no SFT model in {final}"
    log(f"{stage}: actor {cfg.model.path} (model.path{why if cfg.model.use_sft_model else ''})")
    return cfg.model.path


def load_actor(cfg: RecipeConfig, path: str | None = None, for_training: bool = False, seed: int = 0):
    """``(model, tokenizer)`` of the actor (``path`` or ``model.path``), on its device; LoRA added for training
    (its initial weights drawn with ``seed``)."""
    from coderl.models.actor import load_model

    src = path or cfg.model.path
    if not src:
        raise StageError("no model given: set model.path in the config (or model.path=DIR on the command line)")
    model, tok = load_model(src, kind=cfg.model.kind, dtype=cfg.model.dtype, device=resolve_device(cfg.model.device))
    if for_training and cfg.model.gradient_checkpointing:
        from coderl.models.memory import enable_checkpointing

        enable_checkpointing(model)
    return (with_lora(cfg, model, seed) if for_training else model), tok


def token_lengths(tok, texts: list[str]) -> list[int]:
    """How many tokens each text encodes to (prompts as the model is given them, special tokens included)."""
    return [len(ids) for ids in tok(texts)["input_ids"]] if texts else []


def log_long_prompts(log: Log, stage: str, model, lengths: list[int], new_tokens: int) -> None:
    """Say how many prompts (of ``lengths`` tokens) are too long for the model's context and will be cut from the
    start (coderl.models.generate.fit_to_context), before the stage runs."""
    from coderl.models.generate import max_positions, prompt_room

    room = prompt_room(model, new_tokens)
    over = 0 if room is None else sum(n > room for n in lengths)
    if over:
        log(f"{stage}: {over} of {len(lengths)} prompts are longer than the model's {max_positions(model)} positions "
            f"minus {new_tokens} new tokens; they are cut from the start (their ends are kept)")


def log_step_memory(log: Log, stage: str, model, lengths: list[int], new_tokens: int, sequences: int,
                    grad_accum: int, precision: str) -> None:
    """Say, before training starts, the memory a step of ``stage`` needs at least (coderl.models.memory), for
    sequences of the longest of ``lengths`` tokens plus ``new_tokens``."""
    from coderl.models.memory import describe, step_memory

    longest = max(lengths, default=0) + new_tokens
    mem = step_memory(model, sequences, longest, grad_accum, autocast_bytes=4 if precision == "fp32" else 2)
    log(f"{stage}: {sequences} sequences of up to {longest} tokens: {describe(mem)}")


def with_lora(cfg: RecipeConfig, model, seed: int = 0):
    """``model`` ready for training: wrapped with LoRA adapters when ``model.lora.enabled`` (initialised from
    ``seed``, so one config builds one run), else itself."""
    if not cfg.model.lora.enabled:
        return model
    from coderl.models.lora import apply_lora
    from coderl.utils.seeding import seeded

    lo = cfg.model.lora
    with seeded(seed, next(model.parameters()).device):
        return apply_lora(model, lo.r, lo.alpha, lo.dropout, lo.target_modules)


def load_split(cfg: RecipeConfig, split: str | None = None) -> list[Problem]:
    from coderl.tasks import load_problems

    d = cfg.data
    return load_problems(d.dataset, d.path, split or d.train_split, d.limit)


def make_prompter(cfg: RecipeConfig, tok, model: str = "the actor") -> Prompter:
    """The :class:`~coderl.tasks.prompt.Prompter` of ``prompt`` for the actor's tokenizer ``tok`` (``model``: its
    path, for the message when a chat format meets a tokenizer without a chat template)."""
    from coderl.tasks.prompt import NoChatTemplate

    try:
        return Prompter(cfg.prompt.format, tok, cfg.prompt.system, where=model)
    except NoChatTemplate as e:
        raise StageError(str(e)) from None


def sft_pairs(cfg: RecipeConfig, problems: list[Problem], prompter: Prompter) -> list[tuple[str, str]]:
    """(prompt, target) of the ground-truth solutions, as ``prompter`` puts them to the actor."""
    k = cfg.data.solutions_per_problem
    return [(prompter(p), prompter.target(p, s)) for p in problems for s in p.solutions[:k]]


def make_executor(cfg: RecipeConfig):
    """The executor ``execution`` describes (not started): local sandbox workers, or one per Ray node."""
    from coderl.scale import make_executor as executor_for

    e = cfg.execution
    try:
        return executor_for(e.backend, address=e.address, workers=e.workers, timeout=e.timeout,
                            memory_mb=e.memory_mb, checker=e.checker, name=lambda n: f"execution.{n}")
    except ValueError as err:
        raise StageError(str(err)) from None


def same_tokenizer(tok, model_path: str) -> bool:
    """Whether ``tok`` has the same vocabulary as the tokenizer saved with the actor at ``model_path``."""
    from coderl.models.tokenizer import TokenizerLoadError, load_tokenizer

    if not model_path:
        return False
    try:
        other = load_tokenizer(model_path)
    except TokenizerLoadError:
        return False
    return tok.get_vocab() == other.get_vocab()
