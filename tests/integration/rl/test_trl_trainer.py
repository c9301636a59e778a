"""A real TRL GRPOTrainer trains with coderl's ExecutionReward for two steps (skipped when trl is not installed:
it is not a dependency of coderl, only of the dev extra and of benchmarks/trl_grpo.py)."""

from __future__ import annotations

import copy
import importlib.util

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("trl") is None:
    pytest.skip("needs torch and trl (the dev extra)", allow_module_level=True)

import torch  # noqa: E402

from coderl.integrations.trl import ExecutionReward, dataset_rows  # noqa: E402


@pytest.fixture(scope="module")
def setting(sft_family):
    # more supervised training, and sampling a little above temperature 1 below: the programs sampled for one
    # problem then differ in outcome (a weaker model writes only compile errors, a stronger one only passes)
    tasks, tok, model, _ = sft_family(200.0)
    return tasks, tok, model


def test_grpo_trainer_trains_on_execution_rewards(executor, setting, tmp_path):
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    tasks, tok, model = setting
    policy = copy.deepcopy(model)
    reward = ExecutionReward(tasks, executor=executor, extract=False)
    calls: list[tuple[list[str], list[float]]] = []

    def execution_reward(prompts=None, completions=(), **kw):
        out = reward(prompts=prompts, completions=completions, **kw)
        calls.append((list(kw["task_id"]), out))
        return out

    args = GRPOConfig(output_dir=str(tmp_path), seed=0, learning_rate=1e-3, per_device_train_batch_size=8,
                      num_generations=4, max_completion_length=40, max_steps=2, beta=0.0, temperature=1.15,
                      bf16=False, use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
                      disable_tqdm=True)
    trainer = GRPOTrainer(model=policy, reward_funcs=[execution_reward], args=args, processing_class=tok,
                          train_dataset=datasets.Dataset.from_list(dataset_rows(tasks)))
    trainer.train()

    assert trainer.state.global_step == 2 and len(calls) == 2
    for ids, out in calls:
        # 8 completions per step: 2 prompts x 4 generations, each carrying its problem's id
        assert len(ids) == len(out) == 8 and len(set(ids)) == 2 and all(ids.count(i) == 4 for i in set(ids))
        assert set(out) <= {-1.0, -0.6, -0.3, 1.0}
    logged = [h for h in trainer.state.log_history if "reward" in h]
    assert [round(h["reward"], 4) for h in logged] == [round(sum(o) / len(o), 4) for _, o in calls]
    # the SFT'd model's samples of a problem differ in outcome, so some group has non-zero advantages and the
    # update must move the policy
    assert any(len(set(o[i:i + 4])) > 1 for _, o in calls for i in (0, 4)), calls
    moved = any(not torch.equal(a, b) for a, b in zip(policy.parameters(), model.parameters(), strict=True))
    assert moved, "rewards differed within a group but the policy did not move"
