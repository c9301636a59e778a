"""`coderl train-repair` end to end on a tiny saved actor and family tasks: pairs, a saved repair model, summary;
it is `coderl train --stage repair` with options, so both give the same files and the same model."""

from __future__ import annotations

import json

import torch


def test_train_repair_writes_pairs_model_and_summary(tmp_path, tiny_tok, cli):
    from coderl.models.actor import load_model, save_checkpoint, tiny_gpt2

    actor = save_checkpoint(tiny_gpt2(tiny_tok, n_layer=1, n_embd=32, n_head=2, n_positions=128, seed=0), tiny_tok,
                            tmp_path / "actor")
    out = tmp_path / "repair"
    code, output = cli("train-repair", "--actor", actor, "--problems", "family:train:6", "--out", out,
                       "--samples-per-problem", "2", "--max-new-tokens", "8", "--epochs", "1", "--batch-size", "4",
                       "--workers", "2", "--no-progress")
    assert code == 0, output
    info = json.loads(output.strip().splitlines()[-1])
    pairs = [json.loads(x) for x in (out / "pairs.jsonl").read_text().splitlines()]
    # A random actor fails every sample; each failure is paired with its problem's ground truth.
    assert info["samples"] == 12 and len(pairs) == info["pairs"] == info["failures"] == 12
    assert json.loads((out / "summary.json").read_text()) == info
    repair, _ = load_model(out / "final")
    assert repair.config.n_positions == 256  # the actor's 128 positions extended for bug + feedback + fix

    # The same job through the recipe command: the same pairs, steps and weights.
    over = ["data.dataset=family:train:6", f"repair.actor={actor}", "repair.samples_per_problem=2",
            "repair.max_new_tokens=8", "repair.positions=256", "repair.max_problems=800", "repair.train.epochs=1",
            "repair.train.batch_size=4", "repair.train.lr=0.002", "repair.train.warmup_steps=20",
            "execution.workers=2", "execution.timeout=2"]
    code, output = cli("train", "--stage", "repair", "--out", tmp_path / "run", *over, "--no-progress")
    assert code == 0, output
    same = json.loads((tmp_path / "run" / "repair" / "summary.json").read_text())
    assert {k: v for k, v in same.items() if k != "final"} == {k: v for k, v in info.items() if k != "final"}
    assert (tmp_path / "run" / "repair" / "pairs.jsonl").read_text() == (out / "pairs.jsonl").read_text()
    other, _ = load_model(tmp_path / "run" / "repair" / "final")
    assert all(torch.equal(a, b) for a, b in zip(repair.state_dict().values(), other.state_dict().values(),
                                                   strict=True))


def test_train_repair_refuses_to_replace_a_finished_run_and_keeps_it_with_resume(tmp_path, tiny_tok, cli):
    from coderl.models.actor import save_checkpoint, tiny_gpt2

    actor = save_checkpoint(tiny_gpt2(tiny_tok, n_layer=1, n_embd=32, n_head=2, n_positions=128, seed=0), tiny_tok,
                            tmp_path / "actor")
    args = ["train-repair", "--actor", actor, "--problems", "family:train:3", "--out", tmp_path / "r",
            "--samples-per-problem", "1", "--max-new-tokens", "8", "--epochs", "1", "--workers", "2", "--no-progress"]
    code, output = cli(*args)
    assert code == 0, output
    made = (tmp_path / "r" / "final" / "model.safetensors").stat().st_mtime_ns
    code, output = cli(*args)
    assert code == 2 and "--resume" in output and "--overwrite" in output
    code, output = cli(*args, "--resume")
    assert code == 0 and "is complete; kept" in output
    assert (tmp_path / "r" / "final" / "model.safetensors").stat().st_mtime_ns == made


def test_train_repair_rejects_a_missing_actor(tmp_path, cli):
    code, output = cli("train-repair", "--actor", tmp_path / "none", "--out", tmp_path / "o")
    assert code == 2 and "none" in output
