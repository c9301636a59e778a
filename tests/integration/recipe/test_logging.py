"""What a run prints and records without a terminal: plain progress lines, tensorboard scalars of every training
stage, optional wandb, and no library warnings unless --verbose."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types

import pytest
import tiny_models as tm
import yaml

pytestmark = pytest.mark.slow


def cfg_file(tmp_path, models, **over):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({
        "out": str(tmp_path / "run"), "model": {"path": str(models["gpt2"])},
        "data": {"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "all"},
        "sampling": {"n": 2, "max_new_tokens": 8}, "execution": {"workers": 2},
        "critic": {"epochs": 1, "batch_size": 8},
        "sft": {"batch_size": 2, "epochs": 1.0, "warmup_steps": 0},
        "rl": {"mode": "offline", "steps": 3, "problems_per_step": 2, "samples_per_problem": 2, "sft_batch": 2,
               "max_new_tokens": 8}, **over}))
    return p


def scalars(logdir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return set(acc.Tags()["scalars"])


def test_without_a_terminal_training_prints_plain_progress_lines_and_writes_tensorboard(tmp_path, models, cli,
                                                                                      monkeypatch):
    monkeypatch.setenv("CODERL_LOG_EVERY", "0")  # a line per update (the default is one every 30 s)
    cfg = cfg_file(tmp_path, models)
    code, out = cli("train", "--stage", "sft", "-c", cfg)  # progress on; the runner's stderr is no terminal
    assert code == 0, out
    sft = [x for x in out.splitlines() if x.startswith("sft: step ")]
    assert len(sft) == 4 and sft[-1].startswith("sft: step 4/4 | loss ")
    assert re.fullmatch(r"sft: step 1/4 \| loss \d+\.\d{4} lr \S+ \| [\d,]+ tok/s \| ETA \d+s \| elapsed \d+s",
                        sft[0]), sft[0]
    assert "ETA" not in sft[-1]
    code, out = cli("train", "--stage", "rl", "-c", cfg)
    assert code == 0, out
    lines = out.splitlines()
    assert any(x.startswith("sample: problem 8/8") for x in lines)
    assert any(x.startswith("critic: step ") and "epoch 1/1 loss" in x for x in lines)
    rl = [x for x in lines if x.startswith("rl: step ")]
    assert len(rl) == 3 and re.match(r"rl: step 3/3 \| reward [+-]\d\.\d{3} pass \d\.\d\d loss \S+ \| [\d,]+ tok/s",
                                     rl[-1]), rl
    run = tmp_path / "run"
    assert {"sft/loss", "sft/lr"} <= scalars(run / "sft" / "tensorboard")
    assert "critic/loss" in scalars(run / "critic" / "tensorboard")
    assert {"rl/reward", "rl/pass_rate", "rl/loss_pg", "rl/loss_sft"} <= scalars(run / "rl" / "tensorboard")


def test_progress_lines_are_periodic(monkeypatch, capsys):
    import coderl.utils.progress as progress

    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False)
    monkeypatch.delenv("CODERL_LOG_EVERY", raising=False)
    bar = progress.ProgressBar(100, "rl", unit="step", start=10)
    for t in range(1, 71):  # one step a second for 70 s
        clock[0] = 100.0 + t
        bar.update(1, f"reward {t}", tokens=50)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    # the first update, then one every 30 s, then the last figures when the stage ends
    assert [x.split(" | ")[0] for x in lines] == ["rl: step 11/100", "rl: step 41/100", "rl: step 71/100",
                                                 "rl: step 80/100"]
    assert lines[1] == "rl: step 41/100 | reward 31 | 50 tok/s | ETA 59s | elapsed 31s"


def test_wandb_gets_the_scalars_when_asked_for_and_installed(tmp_path, models, cli, monkeypatch):
    cfg = cfg_file(tmp_path, models, log={"wandb_project": "coderl-test"})
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed
    code, out = cli("train", "--stage", "sft", "-c", cfg, "--no-progress")
    assert code == 2 and "wandb is not installed: pip install wandb" in out
    logged, runs = [], []

    class Run:
        def log(self, values, step):
            logged.append((step, values))

        def finish(self):
            runs.append("finished")

    def init(project, name, config, dir):
        runs.append((project, name))
        return Run()

    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(init=init))
    code, out = cli("train", "--stage", "sft", "-c", cfg, "--no-progress", "--overwrite")
    assert code == 0, out
    assert runs == [("coderl-test", "sft"), "finished"]
    assert [s for s, v in logged if "sft/loss" in v] == [1, 2, 3, 4]


def test_library_warnings_only_with_verbose(tmp_path, models):
    # a model whose generation config transformers finds inconsistent (a temperature without sampling): loading it
    # always makes transformers warn, whatever its version deprecates
    model = tmp_path / "model"
    shutil.copytree(models["gpt2"], model)
    (model / "generation_config.json").write_text(json.dumps({"do_sample": False, "temperature": 0.5}))
    cfg = cfg_file(tmp_path, {**models, "gpt2": model}, sampling={"n": 1, "max_new_tokens": 4,
                                                                  "greedy_baseline": False},
                   data={"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "test", "limit": 1})

    def run(*flags: str) -> str:
        res = subprocess.run([sys.executable, "-m", "coderl.cli.main", *flags, "sample", "-c", str(cfg),
                              "--no-progress", "--overwrite"], capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert res.returncode == 0, res.stderr[-3000:]
        return res.stderr

    quiet, verbose = run(), run("--verbose")
    assert "Warning" not in quiet and "[transformers]" not in quiet
    assert "[transformers]" in verbose and "temperature" in verbose
