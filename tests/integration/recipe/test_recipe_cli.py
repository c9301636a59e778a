"""Every recipe stage through the CLI on tiny saved models, APPS (folder format) and MBPP (jsonl) fixtures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tiny_models as tm
import yaml

pytestmark = pytest.mark.slow


def write_config(path: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def state(model_dir: Path) -> dict:
    from coderl.models.actor import load_model

    model, _ = load_model(model_dir)
    return {k: v.clone() for k, v in model.state_dict().items()}


def changed(a: dict, b: dict) -> list[str]:
    return [k for k in a if k in b and not (a[k] == b[k]).all()]


def logits(model_dir: Path, prompt: str = "\nQUESTION:\nAdd two numbers.\n"):
    import torch

    from coderl.models.actor import load_model

    model, tok = load_model(model_dir)
    ids = torch.tensor([tok(prompt)["input_ids"]])
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            return model(input_ids=ids, decoder_input_ids=ids[:, :5]).logits
        return model(input_ids=ids).logits


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_apps_causal_offline_pipeline(tmp_path, models, cli):
    """sample (+ resume) -> SFT -> one command for exec, critic train, critic score and offline RL (+ resume)."""
    import torch

    from coderl.models.tokenizer import load_tokenizer

    run = tmp_path / "run"
    cfg = write_config(
        tmp_path / "apps.yaml", out=str(run),
        model={"path": str(models["gpt2"])},
        data={"dataset": "apps", "path": str(tm.APPS_DIR), "train_split": "test"},
        sampling={"n": 3, "temperature": 1.0, "max_new_tokens": 24, "problems_per_chunk": 2},
        execution={"workers": 2, "timeout": 2.0, "checker": "apps"},
        critic={"epochs": 2, "lr": 0.001, "batch_size": 8},
        sft={"lr": 0.003, "batch_size": 4, "epochs": 2.0, "warmup_steps": 1},
        rl={"mode": "offline", "algo": "coderl", "steps": 3, "problems_per_step": 2, "samples_per_problem": 3,
            "lr": 0.001, "sft_batch": 2, "max_new_tokens": 24, "checkpoint_every": 1})
    code, out = cli("train", "--stage", "sft", "-c", cfg, "--no-progress")
    assert code == 0, out
    assert changed(state(models["gpt2"]), state(run / "sft" / "final"))
    code, out = cli("sample", "-c", cfg, "--no-progress")
    assert code == 0, out
    assert f"actor {run / 'sft' / 'final'} (this run's SFT model" in out  # later stages start from the SFT model
    samples = run / "samples.jsonl"
    first = samples.read_text()
    recs = records(samples)
    assert len(recs) == 4 * 3 and len(records(run / "baseline.jsonl")) == 4
    assert {r["task_id"] for r in recs} == {f"APPS/test/000{i}" for i in range(4)}
    assert all(r["completion_ids"] for r in recs)

    # an interrupted run: the first chunk (2 problems) complete, a torn line of the second
    lines = first.splitlines(keepends=True)
    samples.write_text("".join(lines[:6]) + lines[6][:20])
    code, out = cli("sample", "-c", cfg, "--resume", "--no-progress")
    assert code == 0, out
    assert '"resumed_after": 2' in out
    assert samples.read_text() == first  # per-chunk seeds: identical to the uninterrupted run
    code, out = cli("sample", "-c", cfg, "--resume", "--no-progress", "sampling.temperature=0.5")
    assert code == 2 and "other settings" in out and "sampling.temperature: 1.0 -> 0.5" in out

    # Random models only write programs that fail to compile; add the ground truth so outcomes (and advantages)
    # vary, with the tokens the actor would have produced for it.
    tok = load_tokenizer(models["gpt2"])
    from coderl.tasks import load_problems

    with open(samples, "a") as f:
        for p in load_problems("apps", tm.APPS_DIR, "test"):
            ids = tok(p.solutions[0], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            f.write(json.dumps({"task_id": p.task_id, "completion": p.solutions[0], "sample": 3,
                                "completion_ids": ids, "finished": True}) + "\n")
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress")
    assert code == 0, out
    verdicts = records(run / "samples.verdicts.jsonl")
    assert len(verdicts) == 16 and {v["outcome"] for v in verdicts} >= {"passed", "compile_error"}
    scored = records(run / "scored.jsonl")
    assert len(scored) == 16 and all(s["aligned"] for s in scored)
    by_line = {v["line"]: v for v in verdicts}
    assert all(len(s["token_probs"]) == len(recs[s["line"] - 1]["completion_ids"]) for s in scored if s["line"] <= 12)
    assert all(by_line[s["line"]]["outcome"] == s["outcome"] for s in scored)
    assert (run / "critic" / "critic.safetensors").is_file()
    history = json.loads((run / "rl" / "history.json").read_text())
    assert len(history) == 3 and any(h["loss_pg"] != 0 for h in history)
    final = run / "rl" / "final"
    assert changed(state(models["gpt2"]), state(final))
    assert (final / "model.safetensors").is_file()
    saved = yaml.safe_load((final.parent / "config.yaml").read_text())
    assert saved["rl"]["mode"] == "offline" and json.loads((final / "coderl.json").read_text())["stage"] == "rl"
    ckpt = run / "rl" / "checkpoints" / "step-000003"
    assert torch.equal(logits(final), logits(ckpt))  # the resumable checkpoint and the export hold the same model

    # resume after a crash between steps 2 and 3: the same step 3 as the uninterrupted run
    import shutil

    shutil.rmtree(ckpt)
    (run / "rl" / "checkpoints" / "latest").write_text("step-000002")
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress", "--resume")
    assert code == 0, out
    again = json.loads((run / "rl" / "history.json").read_text())
    assert len(again) == 3
    for k in ("reward", "loss_pg", "loss_sft"):
        assert again[2][k] == pytest.approx(history[2][k], rel=1e-4, abs=1e-6)
    assert torch.allclose(logits(final), logits(run / "rl" / "checkpoints" / "step-000003"))
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress", "--resume", "rl.lr=0.5")
    assert code == 2 and "rl.lr: saved 0.001 vs now 0.5" in out  # never mixes two experiments

    # the samples file is also coderl eval's input
    code, out = cli("eval", "--dataset", "apps", "--path", tm.APPS_DIR, "--samples", samples, "--k", "1",
                    "--no-examples", "--no-chart", "--bootstrap", "0", "--no-progress", "--checker", "apps")
    assert code == 0, out

    # the paper's baseline is the greedy program: a pool with a problem that has none is refused, not given the
    # mean of its samples in silence; without greedy baselines (sampling.greedy_baseline: false) the mean is used
    from coderl.pipelines.recipe import load_recipe
    from coderl.pipelines.rundir import StageError, verdicts_path
    from coderl.pipelines.training import offline_pool

    three = tmp_path / "baseline3.jsonl"  # the baselines of 3 of the 4 problems
    three.write_text("".join((run / "baseline.jsonl").read_text().splitlines(keepends=True)[:3]))
    shutil.copy(verdicts_path(run / "baseline.jsonl"), verdicts_path(three))
    with pytest.raises(StageError, match=r"no greedy baseline for 1 problem\(s\)"):
        offline_pool(load_recipe(cfg), tok, load_problems("apps", tm.APPS_DIR, "test"), samples,
                     verdicts_path(samples), (three, verdicts_path(three)), None, None)
    pool, _ = offline_pool(load_recipe(cfg), tok, load_problems("apps", tm.APPS_DIR, "test"), samples,
                           verdicts_path(samples), None, None, None)
    for r in pool:
        same = [o.reward for o in pool if o.problem.task_id == r.problem.task_id]
        assert r.baseline == pytest.approx(sum(same) / len(same))


def test_mbpp_seq2seq_online_lora_bf16(tmp_path, models, cli):
    """One command: sample -> exec -> critic train -> online CodeRL RL, with LoRA, bf16 autocast and 2 micro-batches."""
    run = tmp_path / "run"
    cfg = write_config(
        tmp_path / "mbpp.yaml", out=str(run),
        model={"path": str(models["t5"]), "lora": {"enabled": True, "r": 4}},
        data={"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "test"},
        sampling={"n": 2, "temperature": 1.2, "max_new_tokens": 16, "problems_per_chunk": 2},
        execution={"workers": 2, "timeout": 2.0},
        critic={"epochs": 1, "lr": 0.001, "batch_size": 8},
        rl={"mode": "online", "algo": "coderl", "steps": 2, "problems_per_step": 2, "samples_per_problem": 2,
            "lr": 0.01, "sft_batch": 2, "max_new_tokens": 16, "checkpoint_every": 1, "grad_accum": 2,
            "precision": "bf16"})
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress")
    assert code == 0, out
    assert (run / "critic" / "critic.json").is_file() and len(records(run / "samples.verdicts.jsonl")) == 6
    ckpt = run / "rl" / "checkpoints" / "step-000002"
    assert (ckpt / "adapter_model.safetensors").is_file()  # LoRA checkpoints hold the adapters
    assert changed(state(models["t5"]), state(run / "rl" / "final"))  # the export has them merged in
    code, out = cli("sample", "-c", cfg, "--model", run / "rl" / "final", "-o", tmp_path / "after.jsonl",
                    "--baseline", tmp_path / "after_base.jsonl", "--split", "validation", "--no-progress")
    assert code == 0, out
    assert len(records(tmp_path / "after.jsonl")) == 2

    # the critic commands alone, on the files above
    code, out = cli("critic", "score", "-c", cfg, "--no-progress")
    assert code == 0, out
    assert len(records(run / "scored.jsonl")) == 6
    code, out = cli("critic", "train", "-c", cfg, "--no-progress", "--output", tmp_path / "critic2",
                    "critic.backbone=" + str(models["gpt2"]), "critic.n_classes=2")
    assert code == 0, out
    assert json.loads((tmp_path / "critic2" / "critic.json").read_text())["n_classes"] == 2


def test_online_grpo_causal_mbpp(tmp_path, models, cli):
    run = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", out=str(run), model={"path": str(models["gpt2"])},
                       data={"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "test"},
                       execution={"workers": 2, "timeout": 2.0},
                       rl={"mode": "online", "algo": "grpo", "steps": 2, "problems_per_step": 2,
                           "samples_per_problem": 2, "lr": 0.001, "sft_batch": 2, "max_new_tokens": 16})
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress")
    assert code == 0, out
    assert not (run / "samples.jsonl").exists()  # grpo online needs no earlier stage
    first = json.loads((run / "rl" / "history.json").read_text())
    assert len(first) == 2
    # the memory a step needs is said before training: 4 sequences (2 problems x 2 samples), MBPP prompts + 16
    assert re.search(r"rl: 4 sequences of up to \d+ tokens: at least [\d.]+ MiB per step \(weights", out), out

    # activation checkpointing trades compute for memory only: the same run takes the same steps
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress", "--overwrite",
                    "model.gradient_checkpointing=true")
    assert code == 0, out
    again = json.loads((run / "rl" / "history.json").read_text())
    for a, b in zip(first, again, strict=True):
        assert a["reward"] == b["reward"] and a["loss_pg"] == pytest.approx(b["loss_pg"], rel=1e-4, abs=1e-6)
    from coderl.pipelines.inputs import load_actor
    from coderl.pipelines.recipe import load_recipe

    on, _ = load_actor(load_recipe(cfg, ["model.gradient_checkpointing=true"]), for_training=True)
    off, _ = load_actor(load_recipe(cfg), for_training=True)
    assert [getattr(m, "is_activation_checkpointing", None) for m in (on, off)] == [True, False]


@pytest.mark.parametrize("arch", ["gpt2", "t5"])
def test_repair_stage_trains_a_repair_model_from_the_actors_failures(tmp_path, models, cli, arch):
    from coderl.models.actor import load_model

    run = tmp_path / "run"
    cfg = write_config(tmp_path / "r.yaml", out=str(run), model={"path": str(models[arch])},
                       data={"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "test"},
                       execution={"workers": 2, "timeout": 2.0},
                       repair={"samples_per_problem": 2, "max_new_tokens": 12, "positions": 600,
                               "train": {"lr": 0.001, "batch_size": 4, "epochs": 1.0, "warmup_steps": 0}})
    code, out = cli("train", "--stage", "repair", "-c", cfg, "--no-progress")
    assert code == 0, out
    summary = json.loads((run / "repair" / "summary.json").read_text())
    assert summary["actor"] == str(models[arch])  # no SFT or RL model in the run yet: the configured model
    # A random tiny actor fails everything, so every sample is a failure paired with a ground-truth solution.
    pairs = records(run / "repair" / "pairs.jsonl")
    assert len(pairs) == summary["pairs"] == summary["failures"] == summary["samples"] > 0
    assert summary["trained_pairs"] + summary["dropped"] == len(pairs) and summary["steps"] > 0
    assert list((run / "repair" / "tensorboard").glob("events.out.tfevents.*"))  # its loss, as every training stage
    assert all(p["input"].rstrip().endswith("# fix:") for p in pairs)
    repair, _ = load_model(run / "repair" / "final")
    before, after = state(models[arch]), {k: v for k, v in repair.state_dict().items()}
    if arch == "gpt2":  # the actor's weights with a longer position table
        assert repair.config.n_positions == 600
        before.pop("transformer.wpe.weight")
    assert changed(before, after)
    stamp = (run / "repair" / "final" / "model.safetensors").stat().st_mtime_ns
    code, out = cli("train", "--stage", "repair", "-c", cfg, "--resume", "--no-progress")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["pairs"] == summary["pairs"]
    assert (run / "repair" / "final" / "model.safetensors").stat().st_mtime_ns == stamp
    if arch == "t5":  # critic sampling loads a seq2seq repair model and repairs with it (an untrained critic)
        from coderl.models.critic import Critic

        Critic.from_model(load_model(models["t5"])[0], 4).save(tmp_path / "critic")
        code, out = cli("data", "export", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--split", "test",
                        "-o", tmp_path / "probs.jsonl")
        assert code == 0, out
        code, out = cli("generate", "--actor", models["t5"], "--critic", tmp_path / "critic", "--repair",
                        run / "repair" / "final", "--problems", tmp_path / "probs.jsonl", "--critic-sampling",
                        "--no-refine", "--n", "2", "--rounds", "2", "--max-new-tokens", "12", "--workers", "2",
                        "-o", tmp_path / "cs.jsonl", "--no-progress")
        assert code == 0, out
        assert any(r["origin"] == "repair" for r in records(tmp_path / "cs.jsonl"))


def test_repair_stage_names_a_missing_actor(tmp_path, models, cli):
    cfg = write_config(tmp_path / "r.yaml", out=str(tmp_path / "run"), model={"path": str(models["gpt2"])},
                       data={"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "test"},
                       repair={"actor": str(tmp_path / "nope")})
    code, out = cli("train", "--stage", "repair", "-c", cfg, "--no-progress")
    assert code == 2 and "nope" in out


def test_critic_training_interrupted_after_an_epoch_resumes_to_the_same_critic(tmp_path, models, monkeypatch):
    import coderl.train.critic as critic_mod
    from coderl.models.critic import Critic
    from coderl.pipelines.recipe import load_recipe
    from coderl.pipelines.stages import run_critic_train, run_exec
    from coderl.tasks import load_problems

    problems = load_problems("mbpp", str(tm.MBPP_FILE), "test")
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": text}) + "\n" for p in problems
                               for text in (p.solutions[0], "def broken(:\n", "raise ValueError\n")))
    over = [f"model.path={models['gpt2']}", "data.dataset=mbpp", f"data.path={tm.MBPP_FILE}", "data.train_split=test",
            "execution.workers=2", "critic.epochs=3", "critic.batch_size=4", "critic.lr=0.001"]
    run_exec(load_recipe(None, [*over, f"out={tmp_path / 'a'}"]), samples, progress=False)
    verdicts = tmp_path / "samples.verdicts.jsonl"
    whole = run_critic_train(load_recipe(None, [*over, f"out={tmp_path / 'a'}"]), samples, verdicts, progress=False)

    real = critic_mod.train_critic

    class Killed(Exception):
        pass

    def killed_after_one_epoch(*args, checkpoints, **kw):
        save = checkpoints.save

        def save_then_die(state):  # the process dies right after its first checkpoint is complete
            save(state)
            raise Killed

        checkpoints.save = save_then_die
        return real(*args, checkpoints=checkpoints, **kw)

    cfg_b = load_recipe(None, [*over, f"out={tmp_path / 'b'}"])
    monkeypatch.setattr(critic_mod, "train_critic", killed_after_one_epoch)
    with pytest.raises(Killed):
        run_critic_train(cfg_b, samples, verdicts, progress=False)
    monkeypatch.setattr(critic_mod, "train_critic", real)
    per_epoch = whole["steps"] // 3
    assert (tmp_path / "b" / "critic" / "checkpoints" / "latest").read_text() == f"step-{per_epoch:06d}"
    resumed = run_critic_train(cfg_b, samples, verdicts, resume=True, progress=False)
    assert resumed["resumed_after_step"] == per_epoch and resumed["steps"] == whole["steps"]
    ckpts = tmp_path / "b" / "critic" / "checkpoints"  # the newest two are kept
    assert sorted(p.name for p in ckpts.iterdir()) == ["latest", f"step-{2 * per_epoch:06d}",
                                                       f"step-{3 * per_epoch:06d}"]
    assert resumed["epoch_losses"] == pytest.approx(whole["epoch_losses"], abs=1e-5)
    a, b = (Critic.load(tmp_path / d / "critic").state_dict() for d in ("a", "b"))
    assert all((a[k] - b[k]).abs().max() < 1e-5 for k in a)
    with pytest.raises(ValueError, match="configuration differs"):  # resuming with other settings is refused
        (tmp_path / "b" / "critic" / "critic_train.json").unlink()
        run_critic_train(load_recipe(None, [*over, f"out={tmp_path / 'b'}", "critic.lr=0.01"]), samples, verdicts,
                         resume=True, progress=False)


def test_prompts_longer_than_the_context_are_cut_and_counted_not_fatal(tmp_path, models, cli):
    # 512 positions, 500 new tokens: every MBPP prompt (longer than 12 tokens) must lose its start
    run = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", out=str(run), model={"path": str(models["gpt2"])},
                       data={"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "test", "limit": 2},
                       sampling={"n": 1, "max_new_tokens": 500, "greedy_baseline": False})
    code, out = cli("sample", "-c", cfg, "--no-progress")
    assert code == 0, out
    assert "sample: 2 of 2 prompts are longer than the model's 512 positions minus 500 new tokens" in out, out
    assert len(records(run / "samples.jsonl")) == 2
