"""The architecture matrix: every recipe stage on a tiny random model of each family (arch_models.ARCHS), loaded
from its saved directory as the real checkpoint would be, with and without LoRA; the critic reads prefixes only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import arch_models as am
import pytest
import tiny_models as tm
import yaml

ARCH_NAMES = list(am.ARCHS)


@pytest.fixture(scope="session")
def arch_dirs(tmp_path_factory):
    """``arch_dirs(name) -> Path``: the saved tiny model of ``name`` (made once per session, on first use)."""
    root = tmp_path_factory.mktemp("archs")
    made: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in made:
            made[name] = am.save(name, root / name)
        return made[name]

    return get


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def weights(model_dir: Path) -> dict:
    from coderl.models.actor import load_model

    model, _ = load_model(model_dir)
    return {k: v.clone() for k, v in model.state_dict().items()}


def logits(model_dir: Path):
    import torch

    from coderl.models.actor import load_model

    model, tok = load_model(model_dir)
    ids = torch.tensor([tok("def add(a, b):\n")["input_ids"]])
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            return model(input_ids=ids, decoder_input_ids=ids[:, :4]).logits
        return model(input_ids=ids).logits


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_the_saved_checkpoint_keeps_its_quirks_and_samples_only_decodable_ids(arch, arch_dirs):
    """Loading a padded-vocabulary checkpoint works; neither backend samples a row the tokenizer cannot decode, and
    log-probabilities are over the same vocabulary as sampling."""
    import torch

    from coderl.models.actor import load_model
    from coderl.models.generate import SamplingConfig, generate
    from coderl.models.logprobs import completion_logprobs
    from coderl.models.tokenizer import load_tokenizer

    spec = am.ARCHS[arch]
    model, tok = load_model(arch_dirs(arch))
    n_tok = len(tok)
    assert model.get_output_embeddings().weight.shape[0] == n_tok + am.EXTRA_ROWS  # the quirk survived the save
    assert (load_tokenizer(arch_dirs(arch)).pad_token is None) == (spec.pad is None)  # as saved
    assert tok.pad_token == (spec.pad or tok.eos_token)  # prepared: a missing pad token becomes eos
    if spec.bos is not None:
        assert tok.bos_token_id != tok.eos_token_id and tok("x")["input_ids"][0] == tok.bos_token_id
    assert bool(getattr(tok, "chat_template", None)) == (spec.chat_template is not None)
    backends = ["hf"] if model.config.is_encoder_decoder else ["loop", "hf"]
    for backend in backends:
        out = generate(model, tok, ["def add(a, b):\n", "# sum\n"], n=8, backend=backend,
                       cfg=SamplingConfig(max_new_tokens=24, temperature=1.5, seed=0))
        ids = [t for row in out for c in row for t in c.token_ids]
        assert len(ids) > 100 and max(ids) < n_tok, backend
    # the sampler's log-probabilities are the model's: same vocabulary, same decoder start, padding ignored
    long_prompt = "# " + "add the two numbers and return their sum " * 3 + "\ndef add(a, b):\n"  # > sliding window
    for backend in backends:
        out = generate(model, tok, [long_prompt, "def f(x):\n"], n=2, backend=backend, with_logprobs=True,
                       cfg=SamplingConfig(max_new_tokens=20, temperature=1.0, seed=1))
        comps = [c for row in out for c in row]
        logp, mask = completion_logprobs(model, [c.prompt_ids for c in comps], [c.token_ids for c in comps],
                                         tok.pad_token_id)
        for b, c in enumerate(comps):
            assert torch.allclose(logp[b, : len(c.token_ids)].detach(), torch.tensor(c.logprobs), atol=1e-4), backend
    if not model.config.is_encoder_decoder:  # the decoding loop (KV cache, positions, window) agrees with generate
        greedy = SamplingConfig(max_new_tokens=24, greedy=True)
        loop, hf = (generate(model, tok, [long_prompt, "def f(x):\n"], n=1, backend=b, cfg=greedy) for b in backends)
        assert [c[0].token_ids for c in loop] == [c[0].token_ids for c in hf]
    prompt = tok(["def f(x):\n"])["input_ids"]
    completion = [tok("    return x\n", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]]
    logp, _ = completion_logprobs(model, prompt, completion, tok.pad_token_id)
    # the same values as a log-softmax over the tokenizer's rows only
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            from coderl.models.actor import decoder_start_id

            dec = torch.tensor([[decoder_start_id(model, tok.pad_token_id)] + completion[0][:-1]])
            full = model(input_ids=torch.tensor(prompt), decoder_input_ids=dec).logits[0]
        else:
            full = model(input_ids=torch.tensor([prompt[0] + completion[0]])).logits[0, len(prompt[0]) - 1: -1]
    want = full[:, :n_tok].log_softmax(-1).gather(-1, torch.tensor(completion[0])[:, None]).squeeze(-1)
    assert torch.allclose(logp[0].detach(), want, atol=1e-5)


def test_a_seq2seq_model_starts_its_decoder_from_one_id_when_its_two_configs_disagree(arch_dirs):
    """generation_config's decoder_start_token_id (what model.generate starts from) wins, for sampling and for
    log-probabilities alike: the sampler's log-probabilities equal completion_logprobs' of the same tokens."""
    import torch

    from coderl.models.actor import decoder_start_id, load_model
    from coderl.models.generate import SamplingConfig, generate
    from coderl.models.logprobs import completion_logprobs

    model, tok = load_model(arch_dirs("t5"))
    assert model.config.decoder_start_token_id == tok.pad_token_id
    model.generation_config.decoder_start_token_id = tok.eos_token_id
    assert decoder_start_id(model, tok.pad_token_id) == tok.eos_token_id
    out = generate(model, tok, ["def add(a, b):\n"], n=4, with_logprobs=True,
                   cfg=SamplingConfig(max_new_tokens=12, temperature=1.0, seed=0))[0]
    logp, _ = completion_logprobs(model, [c.prompt_ids for c in out], [c.token_ids for c in out], tok.pad_token_id)
    for b, c in enumerate(out):
        assert torch.allclose(logp[b, : len(c.token_ids)].detach(), torch.tensor(c.logprobs), atol=1e-4)


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_every_critic_value_depends_only_on_the_prefix(arch, arch_dirs, tmp_path):
    """Change the last program token: the critic's outputs at the earlier program tokens do not move (it did read
    the token: the output at it moves). For a critic on a copy of the actor, on a separately loaded backbone, and
    after a save and load."""
    import torch

    from coderl.models.actor import load_model
    from coderl.models.critic import Critic, critic_inputs

    model, tok = load_model(arch_dirs(arch))
    prompt = tok(["def add(a, b):\n"])["input_ids"][0]
    program = tok("    return a + b\n", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    other = program[:-1] + [next(t for t in range(5, len(tok)) if t != program[-1])]
    ids, attn, pm = critic_inputs([prompt, prompt], [program, other], tok.pad_token_id)
    first, last = len(prompt), len(prompt) + len(program) - 1
    made = Critic.from_model(model, n_classes=4, seed=0)
    made.save(tmp_path / "critic")
    for critic in (made, Critic.from_pretrained_backbone(arch_dirs(arch), 4, seed=0), Critic.load(tmp_path / "critic")):
        critic.eval()
        with torch.no_grad():
            out = critic(ids, attn, pm)
        assert torch.allclose(out[0, first:last], out[1, first:last], atol=1e-5), critic.backbone_part
        assert not torch.allclose(out[0, last], out[1, last], atol=1e-5)


def write_config(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def _config(tmp_path: Path, model_dir: Path, lora: bool) -> Path:
    model = {"path": str(model_dir)}
    if lora:
        model["lora"] = {"enabled": True, "r": 4}
    return write_config(
        tmp_path / "recipe.yaml", out=str(tmp_path / "run"), model=model,
        data={"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "test"},
        sampling={"n": 2, "temperature": 1.0, "max_new_tokens": 12, "problems_per_chunk": 2},
        execution={"workers": 2, "timeout": 2.0},
        critic={"epochs": 1, "lr": 0.001, "batch_size": 8},
        sft={"lr": 0.003, "batch_size": 4, "epochs": 1.0, "warmup_steps": 0},
        rl={"mode": "offline", "algo": "coderl", "steps": 2, "problems_per_step": 2, "samples_per_problem": 2,
            "lr": 0.001, "sft_batch": 2, "max_new_tokens": 12, "checkpoint_every": 1},
        repair={"samples_per_problem": 1, "max_new_tokens": 8, "positions": 600,
                "train": {"lr": 0.001, "batch_size": 4, "epochs": 1.0, "warmup_steps": 0}})


def _tied_groups(model_dir: Path) -> list[set[str]]:
    """Parameter names sharing one tensor in the model loaded from ``model_dir``."""
    from coderl.models.actor import load_model

    model, _ = load_model(model_dir)
    by_id: dict[int, set[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        by_id.setdefault(id(p), set()).add(name)
    return sorted((g for g in by_id.values() if len(g) > 1), key=sorted)


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_every_stage(arch, lora, arch_dirs, tmp_path, cli):
    """sft -> sample -> exec -> critic train -> critic score -> offline RL (+ resume from a checkpoint) -> online RL
    with an online critic -> repair -> generate with critic sampling -> eval, through the CLI."""
    import torch

    src = arch_dirs(arch)
    cfg = _config(tmp_path, src, lora)
    run = tmp_path / "run"
    code, out = cli("train", "--stage", "sft", "-c", cfg, "--no-progress")
    assert code == 0, out
    before = weights(src)
    assert [k for k, v in weights(run / "sft" / "final").items() if not torch.equal(v, before[k])]

    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress")  # sample, exec, critic, score, RL
    assert code == 0, out
    samples = records(run / "samples.jsonl")
    assert len(samples) == 2 * len(records(run / "baseline.jsonl")) > 0
    verdicts = records(run / "samples.verdicts.jsonl")
    assert len(verdicts) == len(samples) and {v["outcome"] for v in verdicts}
    scored = records(run / "scored.jsonl")
    assert scored and all(s["aligned"] for s in scored)
    critic_meta = json.loads((run / "critic" / "critic.json").read_text())
    assert critic_meta["backbone_part"] == ("encoder-decoder" if arch == "t5" else "model")
    history = json.loads((run / "rl" / "history.json").read_text())
    assert len(history) == 2
    final = run / "rl" / "final"
    tied = _tied_groups(src)
    assert bool(tied) == json.loads((src / "config.json").read_text()).get("tie_word_embeddings", True)
    assert _tied_groups(final) == tied  # tied embeddings (T5's shared.weight, GPT-2's wte) are tied in the export

    uninterrupted = logits(final)
    # resume after a crash between steps 1 and 2: the same step 2, tied weights and all
    shutil.rmtree(run / "rl" / "checkpoints" / "step-000002")
    (run / "rl" / "checkpoints" / "latest").write_text("step-000001")
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress", "--resume")
    assert code == 0, out
    again = json.loads((run / "rl" / "history.json").read_text())
    for k in ("reward", "loss_pg", "loss_sft"):
        assert again[1][k] == pytest.approx(history[1][k], rel=1e-4, abs=1e-6)
    assert torch.allclose(logits(final), uninterrupted, atol=1e-5)
    if lora:  # the checkpoints hold the adapters
        assert (run / "rl" / "checkpoints" / "step-000002" / "adapter_model.safetensors").is_file()
    assert _tied_groups(final) == tied

    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress", "--overwrite", "rl.mode=online",
                    "rl.steps=1", "rl.critic_online_lr=0.001")
    assert code == 0, out
    assert len(json.loads((run / "rl" / "history.json").read_text())) == 1

    code, out = cli("train", "--stage", "repair", "-c", cfg, "--no-progress")
    assert code == 0, out
    assert json.loads((run / "repair" / "summary.json").read_text())["steps"] > 0

    probs = tmp_path / "problems.jsonl"
    code, out = cli("data", "export", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--split", "test", "-o", probs)
    assert code == 0, out
    code, out = cli("generate", "--actor", final, "--critic", run / "critic", "--repair", run / "repair" / "final",
                    "--problems", probs, "--critic-sampling", "--n", "2", "--rounds", "2", "--max-new-tokens", "8",
                    "--workers", "2", "-o", tmp_path / "cs.jsonl", "--no-progress")
    assert code == 0, out
    generated = records(tmp_path / "cs.jsonl")
    assert generated and {r["task_id"] for r in generated} == {r["task_id"] for r in samples}

    code, out = cli("eval", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--split", "test", "--samples",
                    run / "samples.jsonl", "--k", "1", "--no-examples", "--no-chart", "--bootstrap", "0",
                    "--no-progress")
    assert code == 0, out


def test_a_saved_encoder_only_critic_is_refused_with_what_to_do(arch_dirs, tmp_path, cli):
    """A critic saved by an earlier coderl on a seq2seq encoder alone (bidirectional: its values read later tokens)
    stops the command with exit 2, naming the directory and the fix, without a traceback."""
    from coderl.models.actor import load_model
    from coderl.models.critic import Critic

    crit = tmp_path / "critic"
    Critic.from_model(load_model(arch_dirs("t5"))[0], 4).save(crit)
    meta = json.loads((crit / "critic.json").read_text())
    (crit / "critic.json").write_text(json.dumps({**meta, "backbone_part": "encoder"}))
    probs = tmp_path / "problems.jsonl"
    code, out = cli("data", "export", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--split", "test", "-o", probs)
    assert code == 0, out
    code, out = cli("generate", "--actor", arch_dirs("t5"), "--critic", crit, "--problems", probs, "--critic-sampling",
                    "--n", "2", "--max-new-tokens", "4", "-o", tmp_path / "out.jsonl", "--no-progress")
    assert code == 2 and str(crit) in out and "train it again" in out and "Traceback" not in out
