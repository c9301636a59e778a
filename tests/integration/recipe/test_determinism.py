"""Same config, same seed, same run: with dropout on (10%, CodeT5's rate), and with LoRA adapters, two runs of SFT,
of the critic and of RL give identical losses and weights."""

from __future__ import annotations

import json

import pytest
import tiny_models as tm
import yaml

pytestmark = pytest.mark.slow


def run_twice(tmp_path, cli, stage: list[str], **cfg) -> tuple:
    outs = []
    for name in ("a", "b"):
        p = tmp_path / f"{name}.yaml"
        p.write_text(yaml.safe_dump({"out": str(tmp_path / name), **cfg}))
        code, out = cli(*stage, "-c", p, "--no-progress")
        assert code == 0, out
        outs.append(tmp_path / name)
    return tuple(outs)


def same_state(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def model_state(d):
    from coderl.models.actor import load_model

    return dict(load_model(d)[0].state_dict())


@pytest.mark.parametrize("arch, lora", [("gpt2_dropout", False), ("t5_dropout", False), ("gpt2_dropout", True)])
def test_two_sft_runs_are_identical(tmp_path, models, cli, arch, lora):
    a, b = run_twice(tmp_path, cli, ["train", "--stage", "sft"],
                     model={"path": str(models[arch]), "lora": {"enabled": lora, "r": 4}},
                     data={"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "all"},
                     sft={"lr": 0.003, "batch_size": 2, "epochs": 2.0, "warmup_steps": 1})
    ha, hb = (json.loads((d / "sft" / "history.json").read_text()) for d in (a, b))
    assert len(ha) == 8 and ha == hb  # bit for bit
    assert same_state(model_state(a / "sft" / "final"), model_state(b / "sft" / "final"))


@pytest.mark.parametrize("arch", ["gpt2_dropout", "t5_dropout"])
def test_two_critic_and_rl_runs_are_identical(tmp_path, models, cli, arch):
    from coderl.models.critic import Critic

    a, b = run_twice(tmp_path, cli, ["train", "--stage", "rl"],
                     model={"path": str(models[arch])},
                     data={"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "all"},
                     sampling={"n": 2, "max_new_tokens": 8, "temperature": 1.0}, execution={"workers": 2},
                     critic={"epochs": 2, "lr": 0.001, "batch_size": 4},
                     rl={"mode": "offline", "algo": "coderl", "steps": 4, "problems_per_step": 2,
                         "samples_per_problem": 2, "lr": 0.001, "sft_batch": 2, "max_new_tokens": 8})
    assert (a / "samples.jsonl").read_text() == (b / "samples.jsonl").read_text()
    ca, cb = (json.loads((d / "critic" / "critic_train.json").read_text()) for d in (a, b))
    assert ca["epoch_losses"] == cb["epoch_losses"]
    assert same_state(Critic.load(a / "critic").state_dict(), Critic.load(b / "critic").state_dict())
    sa, sb = ([{k: r[k] for k in ("key", "token_probs", "critic_probs")} for r in map(json.loads, (
        d / "scored.jsonl").read_text().splitlines())] for d in (a, b))
    assert sa == sb
    ha, hb = (json.loads((d / "rl" / "history.json").read_text()) for d in (a, b))
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in ha]
    assert len(ha) == 4 and strip == [{k: v for k, v in h.items() if k != "seconds"} for h in hb]
    assert any(h["loss_sft"] > 0 for h in ha)
    assert same_state(model_state(a / "rl" / "final"), model_state(b / "rl" / "final"))
