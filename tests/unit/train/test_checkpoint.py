"""coderl.train.checkpoint.Checkpoints, the one resume path of every training loop, on a plain torch module with
its own file format: when it saves, what a resume restores, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from coderl.train.checkpoint import Checkpoints, TrainingState, load_training_state


def save(model: torch.nn.Module, _tok, d: Path, _info: dict) -> None:
    torch.save(model.state_dict(), d / "weights.pt")


def load(model: torch.nn.Module, d: Path) -> None:
    model.load_state_dict(torch.load(d / "weights.pt"))


def trained(steps: int, ckpts: Checkpoints, seed: int = 0) -> tuple[torch.nn.Module, TrainingState]:
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    state = ckpts.attach(model, None, opt, save, load).resume()
    x = torch.arange(12.0).reshape(4, 3)
    for _ in range(state.step, steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        state.step += 1
        state.history.append({"step": state.step})
        ckpts.after_step(state)
    ckpts.finish(state)
    return model, state


def names(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").glob("step-*"))


def test_saves_every_n_steps_and_the_last_step_once(tmp_path):
    _, state = trained(5, Checkpoints(tmp_path, {"lr": 0.1}, every=2, keep=10))
    assert names(tmp_path) == ["step-000002", "step-000004", "step-000005"]
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step-000005"
    saved = load_training_state(tmp_path / "checkpoints" / "step-000005")
    assert saved["step"] == 5 and saved["history"] == state.history and saved["config"] == {"lr": 0.1}


def test_finish_does_not_save_a_step_already_saved(tmp_path):
    trained(4, Checkpoints(tmp_path, {}, every=2, keep=10))
    assert names(tmp_path) == ["step-000002", "step-000004"]


def test_only_the_newest_keep_checkpoints_stay(tmp_path):
    trained(6, Checkpoints(tmp_path, {}, every=1, keep=2))
    assert names(tmp_path) == ["step-000005", "step-000006"]


def test_a_resumed_run_restores_weights_optimiser_and_history_and_ends_as_the_uninterrupted_one(tmp_path):
    whole, _ = trained(6, Checkpoints(tmp_path / "a", {}))
    trained(3, Checkpoints(tmp_path / "b", {}))
    logged: list[str] = []
    resumed, state = trained(6, Checkpoints(tmp_path / "b", {}, resume=True, log=logged.append), seed=1)
    assert [h["step"] for h in state.history] == [1, 2, 3, 4, 5, 6]
    assert state.checkpoint == tmp_path / "b" / "checkpoints" / "step-000003"
    assert logged == [f"resuming from {state.checkpoint} (step 3)"]
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)  # AdamW's moments came back too: otherwise steps 4-6 would differ


def test_without_resume_a_run_starts_fresh_and_a_resume_with_other_settings_is_refused(tmp_path):
    trained(2, Checkpoints(tmp_path, {"lr": 0.1}))
    _, fresh = trained(1, Checkpoints(tmp_path, {"lr": 0.1}))
    assert fresh.checkpoint is None and fresh.step == 1
    with pytest.raises(ValueError, match=r"configuration differs \(lr: saved 0.1 vs now 0.2\)"):
        trained(4, Checkpoints(tmp_path, {"lr": 0.2}, resume=True))


def test_resume_needs_what_it_restores_into(tmp_path):
    with pytest.raises(RuntimeError, match="attach"):
        Checkpoints(tmp_path, {}).resume()
    with pytest.raises(ValueError, match="every must be >= 0"):
        Checkpoints(tmp_path, {}, every=-1)
