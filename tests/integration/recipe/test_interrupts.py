"""kill -9 and Ctrl-C, then --resume, give the uninterrupted run: SFT, critic and RL, for a causal actor (GPT-2,
tied lm_head) and a seq2seq one whose embeddings are stored once (T5's shared.weight). A finished run is extended
with a larger rl.steps."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tiny_models as tm
import yaml

pytestmark = pytest.mark.slow


def config(tmp_path: Path, name: str, model: Path, out: Path) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump({
        "out": str(out), "model": {"path": str(model)},
        "data": {"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "all"},
        "sampling": {"n": 2, "max_new_tokens": 8, "problems_per_chunk": 4}, "execution": {"workers": 2},
        "sft_checkpoint_every": 1,
        "sft": {"lr": 0.003, "batch_size": 2, "epochs": 6.0, "warmup_steps": 2},
        "critic": {"epochs": 4, "lr": 0.001, "batch_size": 2},
        "rl": {"mode": "offline", "algo": "coderl", "use_critic": False, "steps": 24, "problems_per_step": 2,
               "samples_per_problem": 2, "lr": 0.001, "sft_batch": 2, "max_new_tokens": 8, "checkpoint_every": 1}}))
    return p


def latest_step(ckpts: Path) -> int:
    marker = ckpts / "latest"
    try:
        return int(marker.read_text().split("-")[1])
    except (OSError, IndexError, ValueError):
        return 0


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as the in-process runs (conftest): the same float results
    return subprocess.Popen([sys.executable, "-m", "coderl.cli.main", *map(str, args), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def wait_past(proc: subprocess.Popen, ckpts: Path, step: int, timeout: float = 180) -> int:
    deadline = time.monotonic() + timeout
    while (now := latest_step(ckpts)) <= step:
        if proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before step {step + 1}: {proc.stderr.read()[-3000:]}")
        assert time.monotonic() < deadline, f"no checkpoint past step {step} in {timeout} s"
        time.sleep(0.01)
    return now


def interrupt_twice_then_finish(args: list[str], ckpts: Path, cli) -> str:
    """kill -9 after the first checkpoint; --resume, Ctrl-C once it has gone further; --resume to the end."""
    proc = start(args)
    killed_at = wait_past(proc, ckpts, 0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc = start([*args, "--resume"])
    wait_past(proc, ckpts, latest_step(ckpts))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    stopped_at = latest_step(ckpts)
    assert killed_at < stopped_at, (killed_at, stopped_at)
    assert f"interrupted at step {stopped_at}; checkpoint saved to {ckpts / f'step-{stopped_at:06d}'}" in err, err
    assert "resume with: coderl " in err and err.rstrip().endswith("--resume"), err
    code, out = cli(*args, "--resume", "--no-progress")
    assert code == 0, out
    assert not list(ckpts.glob(".*.tmp")), "a temporary checkpoint was left behind"
    return out


def weights(model_dir: Path) -> dict:
    from coderl.models.actor import load_model

    return dict(load_model(model_dir)[0].state_dict())


def assert_same_weights(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


@pytest.mark.parametrize("arch", ["gpt2_dropout", "t5_dropout"])
def test_sft_killed_and_interrupted_resumes_to_the_uninterrupted_run(tmp_path, models, cli, arch):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    code, out = cli("train", "--stage", "sft", "-c", config(tmp_path, "a", models[arch], whole), "--no-progress")
    assert code == 0, out
    args = ["train", "--stage", "sft", "-c", config(tmp_path, "b", models[arch], broken)]
    interrupt_twice_then_finish(args, broken / "sft" / "checkpoints", cli)
    ha, hb = (json.loads((d / "sft" / "history.json").read_text()) for d in (whole, broken))
    assert [h["step"] for h in hb] == [h["step"] for h in ha] == list(range(1, 25))
    assert [h["loss"] for h in hb] == pytest.approx([h["loss"] for h in ha], rel=1e-4)
    assert_same_weights(weights(whole / "sft" / "final"), weights(broken / "sft" / "final"))


@pytest.mark.parametrize("arch", ["gpt2_dropout", "t5_dropout"])
def test_critic_killed_and_interrupted_resumes_to_the_same_critic(tmp_path, models, cli, arch):
    from coderl.models.critic import Critic
    from coderl.pipelines.recipe import load_recipe
    from coderl.pipelines.stages import run_exec
    from coderl.tasks import load_problems

    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": text}) + "\n"
                               for p in load_problems("mbpp", tm.MBPP_FILE, "all")
                               for text in (p.solutions[0], "def broken(:\n", "raise ValueError\n")))
    run_exec(load_recipe(config(tmp_path, "x", models[arch], tmp_path / "x")), samples, progress=False)
    files = ["--samples", samples, "--verdicts", tmp_path / "samples.verdicts.jsonl"]
    code, out = cli("critic", "train", "-c", config(tmp_path, "a", models[arch], tmp_path / "whole"), *files,
                    "--no-progress")
    assert code == 0, out
    args = ["critic", "train", "-c", config(tmp_path, "b", models[arch], tmp_path / "broken"), *files]
    interrupt_twice_then_finish(args, tmp_path / "broken" / "critic" / "checkpoints", cli)
    sa, sb = (json.loads((tmp_path / d / "critic" / "critic_train.json").read_text()) for d in ("whole", "broken"))
    assert sb["steps"] == sa["steps"] and sb["epochs"] == 4 and sb["resumed_after_step"] > 0
    assert sb["epoch_losses"] == pytest.approx(sa["epoch_losses"], rel=1e-4)
    a, b = (Critic.load(tmp_path / d / "critic").state_dict() for d in ("whole", "broken"))
    assert_same_weights(a, b)


@pytest.mark.parametrize("arch", ["gpt2_dropout", "t5_dropout"])
def test_rl_killed_and_interrupted_resumes_to_the_uninterrupted_run_and_a_finished_run_extends(tmp_path, models,
                                                                                              cli, arch):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    cfg_a = config(tmp_path, "a", models[arch], whole)
    code, out = cli("train", "--stage", "rl", "-c", cfg_a, "--no-progress")
    assert code == 0, out
    broken.mkdir()
    for name in ("samples.jsonl", "samples.jsonl.meta.json", "baseline.jsonl"):  # the same pool, not sampled again
        shutil.copy(whole / name, broken / name)
    args = ["train", "--stage", "rl", "-c", config(tmp_path, "b", models[arch], broken)]
    interrupt_twice_then_finish(args, broken / "rl" / "checkpoints", cli)
    ha, hb = (json.loads((d / "rl" / "history.json").read_text()) for d in (whole, broken))
    assert [h["step"] for h in hb] == list(range(1, 25))
    for k in ("reward", "loss_pg", "loss_sft"):
        assert [h[k] for h in hb] == pytest.approx([h[k] for h in ha], rel=1e-4, abs=1e-6), k
    assert_same_weights(weights(whole / "rl" / "final"), weights(broken / "rl" / "final"))

    # A finished run resumed with more steps continues it: the same 30 steps as a run of 30 from the start
    code, out = cli("train", "--stage", "rl", "-c", cfg_a, "--no-progress", "--resume", "rl.steps=30")
    assert code == 0, out
    code, out = cli("train", "--stage", "rl", "-c", cfg_a, "--no-progress", "--out", tmp_path / "long",
                    "rl.steps=30")
    assert code == 0, out
    extended, long = (json.loads((d / "rl" / "history.json").read_text()) for d in (whole, tmp_path / "long"))
    assert len(extended) == 30 and extended[:24] == ha
    assert [h["loss_sft"] for h in extended] == pytest.approx([h["loss_sft"] for h in long], rel=1e-4)
    assert_same_weights(weights(whole / "rl" / "final"), weights(tmp_path / "long" / "rl" / "final"))


def test_repair_killed_and_interrupted_resumes_from_its_pairs_to_the_uninterrupted_run(tmp_path, models, cli):
    """The repair stage trains through the same checkpoints as SFT: after kill -9 and Ctrl-C, --resume trains on
    the pairs the interrupted run wrote (the actor is not sampled again) and ends with the uninterrupted model."""
    whole, broken = tmp_path / "whole", tmp_path / "broken"

    def repair_config(name: str, out: Path) -> Path:
        p = config(tmp_path, name, models["gpt2_dropout"], out)
        data = yaml.safe_load(p.read_text())
        data["repair"] = {"samples_per_problem": 2, "max_new_tokens": 8, "positions": 128,
                          "train": {"lr": 0.003, "batch_size": 2, "epochs": 4.0, "warmup_steps": 2}}
        p.write_text(yaml.safe_dump(data))
        return p

    code, out = cli("train", "--stage", "repair", "-c", repair_config("a", whole), "--no-progress")
    assert code == 0, out
    args = ["train", "--stage", "repair", "-c", repair_config("b", broken)]
    out = interrupt_twice_then_finish(args, broken / "repair" / "checkpoints", cli)
    assert "pairs of the interrupted run" in out, out
    sa, sb = (json.loads((d / "repair" / "summary.json").read_text()) for d in (whole, broken))
    assert sb["steps"] == sa["steps"] > 2 and sb["trained_pairs"] == sa["trained_pairs"]
    assert sb["final_loss"] == pytest.approx(sa["final_loss"], rel=1e-4)
    assert (whole / "repair" / "pairs.jsonl").read_text() == (broken / "repair" / "pairs.jsonl").read_text()
    assert_same_weights(weights(whole / "repair" / "final"), weights(broken / "repair" / "final"))
