"""A stage run again without --resume refuses to replace what the earlier run wrote, naming the files; --overwrite
replaces it; --resume keeps it."""

from __future__ import annotations

import json

import pytest
import tiny_models as tm
import yaml

pytestmark = pytest.mark.slow


def test_every_stage_refuses_to_overwrite_an_earlier_run_unless_asked(tmp_path, models, cli):
    run = tmp_path / "run"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "out": str(run), "model": {"path": str(models["gpt2"])},
        "data": {"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "test"},
        "sampling": {"n": 2, "max_new_tokens": 8, "problems_per_chunk": 2}, "execution": {"workers": 2},
        "critic": {"epochs": 1, "batch_size": 8},
        "sft": {"batch_size": 4, "epochs": 1.0, "warmup_steps": 0},
        "rl": {"mode": "offline", "steps": 2, "problems_per_step": 2, "samples_per_problem": 1, "sft_batch": 1,
               "max_new_tokens": 8},
        "repair": {"samples_per_problem": 1, "max_new_tokens": 8, "positions": 600,
                   "train": {"batch_size": 4, "epochs": 1.0, "warmup_steps": 0}}}))
    stages = [  # (command, what it wrote)
        (("train", "--stage", "sft"), [run / "sft"]),
        (("sample",), [run / "samples.jsonl", run / "samples.jsonl.meta.json", run / "baseline.jsonl"]),
        (("train", "--stage", "rl"), [run / "rl"]),  # (runs exec, critic train and critic score first)
        (("critic", "train"), [run / "critic"]),
        (("critic", "score"), [run / "scored.jsonl"]),
        (("train", "--stage", "repair"), [run / "repair"]),
    ]
    for command, files in stages:
        if command != ("critic", "train") and command != ("critic", "score"):  # those ran inside the rl chain
            code, out = cli(*command, "-c", cfg, "--no-progress")
            assert code == 0, (command, out)
        before = {f: f.stat().st_mtime_ns for f in files}
        code, out = cli(*command, "-c", cfg, "--no-progress")
        assert code == 2, (command, out)
        assert "an earlier run's files are in the way" in out and all(str(f) in out for f in files), (command, out)
        assert "--resume" in out and "--overwrite" in out
        assert {f: f.stat().st_mtime_ns for f in files} == before, f"{command} touched its files when refusing"
        code, out = cli(*command, "-c", cfg, "--no-progress", "--resume", "--overwrite")
        assert code == 2 and "give one" in out
    # --overwrite replaces: the SFT run starts over (its old checkpoints are gone, not mixed in)
    (run / "sft" / "checkpoints" / "step-999999").mkdir()
    code, out = cli("train", "--stage", "sft", "-c", cfg, "--no-progress", "--overwrite")
    assert code == 0, out
    assert f"sft: --overwrite: removed {run / 'sft'}" in out
    assert not (run / "sft" / "checkpoints" / "step-999999").exists()
    code, out = cli("critic", "score", "-c", cfg, "--no-progress", "--overwrite")
    first = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and first["kept"] == 0 and first["scored"] > 0
    code, out = cli("critic", "score", "-c", cfg, "--no-progress", "--resume")  # nothing changed: all kept
    res = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and res["scored"] == 0 and res["kept"] == first["scored"]
