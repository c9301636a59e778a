"""`coderl train-repair` end to end on a tiny saved actor and family tasks: pairs, a saved repair model, summary."""

from __future__ import annotations

import json


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
    repair, _ = load_model(out / "model")
    assert repair.config.n_positions == 256  # the actor's 128 positions extended for bug + feedback + fix


def test_train_repair_rejects_a_missing_actor(tmp_path, cli):
    code, output = cli("train-repair", "--actor", tmp_path / "none", "--out", tmp_path / "o")
    assert code == 2 and "none" in output
