"""Paths of the wrong kind: a directory where a file goes, a file where a directory goes, a directory given as an
input file, a mistyped model path. Each is one line naming the path, exit 2, no traceback, no stray temp file;
and the model a stage starts from is named."""

from __future__ import annotations

import json
import time

import pytest
import tiny_models as tm
import yaml


def cfg_file(tmp_path, models, **over):
    data = {"out": str(tmp_path / "run"), "model": {"path": str(models["gpt2"])},
            "data": {"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "test"},
            "sampling": {"n": 1, "max_new_tokens": 4}, "execution": {"workers": 1}, **over}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_a_directory_or_a_file_in_the_wrong_place_is_one_line_exit_2(tmp_path, models, cli):
    cfg = cfg_file(tmp_path, models)
    a_dir = tmp_path / "a-dir"
    a_dir.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x\n")
    problems = tmp_path / "problems.jsonl"
    code, out = cli("data", "export", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--split", "test", "-o", problems)
    assert code == 0, out
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "Mbpp/11", "completion": "x"}) + "\n")
    requests = tmp_path / "r.jsonl"
    requests.write_text(json.dumps({"id": "a", "program": "x = 1", "tests": {"type": "assert",
                                                                         "asserts": ["assert x == 1"]}}) + "\n")
    cases = [
        (("sample", "-c", cfg, "-o", a_dir), a_dir, "is a directory"),
        (("sample", "-c", cfg, "--baseline", a_dir), a_dir, "is a directory"),
        (("sample", "-c", cfg, "--out", a_file), a_file, "a file"),
        (("sample", "-c", cfg, "-o", a_file / "s.jsonl"), a_file, "is a file, not a directory"),
        (("critic", "train", "-c", cfg, "-o", a_file), a_file, "is a file"),
        (("critic", "score", "-c", cfg, "-o", a_dir), a_dir, "is a directory"),
        (("train", "--stage", "sft", "-c", cfg, "--out", a_file), a_file, "a file"),
        (("train", "--stage", "rl", "-c", cfg, "--out", a_file), a_file, "a file"),
        (("train", "--stage", "repair", "-c", cfg, "--out", a_file), a_file, "a file"),
        (("eval", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--samples", samples, "-o", a_file), a_file,
         "is a file"),
        (("eval", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--samples", a_dir), a_dir, "is a directory"),
        (("eval", "--dataset", a_dir, "--samples", samples), a_dir, "is a directory"),
        (("data", "export", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "-o", a_dir), a_dir, "is a directory"),
        (("generate", "--actor", models["gpt2"], "--problems", problems, "-o", a_dir), a_dir, "is a directory"),
        (("generate", "--actor", models["gpt2"], "--problems", a_dir, "-o", tmp_path / "g.jsonl"), a_dir,
         "is a directory"),
        (("train-repair", "--actor", models["gpt2"], "--problems", problems, "-o", a_file), a_file, "is a file"),
        (("demo", "--out", a_file), a_file, "is a file"),
        (("exec", requests, "-o", a_dir), a_dir, "is a directory"),
        (("exec", a_dir), a_dir, "is a directory"),
    ]
    for args, path, what in cases:
        code, out = cli(*args, "--no-progress") if args[0] not in ("data",) else cli(*args)
        assert code == 2, (args, out)
        assert str(path) in out and what in out and "Traceback" not in out, (args, out)
        assert len(out.strip().splitlines()) == 1, (args, out)
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left behind"
    assert not (tmp_path / "run").exists(), "a refused command wrote into the run directory"


def test_a_directory_given_as_an_input_file_says_so(tmp_path, models, cli):
    cfg = cfg_file(tmp_path, models)
    (tmp_path / "run" / "samples.jsonl").mkdir(parents=True)
    code, out = cli("critic", "train", "-c", cfg)
    assert code == 2 and "samples.jsonl: is a directory, expected a file" in out


def test_a_mistyped_local_model_path_fails_at_once_and_a_hub_id_does_not_wait_for_the_hub(tmp_path, models, cli,
                                                                                         monkeypatch):
    import coderl.utils.hub as hub

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    # A hub endpoint that refuses connections, so the test does not depend on this machine's network
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hub, "_available", None)
    cfg = cfg_file(tmp_path, models)
    t0 = time.monotonic()
    code, out = cli("sample", "-c", cfg, "model.path=runs/fnal")  # looks like org/name, but runs/ is here
    assert code == 2 and "'runs/fnal': the directory does not exist" in out, out
    # Not a local path: tried as a hub id; this machine cannot reach the hub, so the library goes offline (its
    # cache) at once instead of retrying for half a minute.
    code, out = cli("sample", "-c", cfg, "model.path=no-such-org/no-such-model")
    assert code == 2 and "no-such-org/no-such-model" in out and "not in the local cache" in out, out
    assert time.monotonic() - t0 < 15


@pytest.mark.slow
def test_stages_after_sft_start_from_the_sft_model_and_say_so(tmp_path, models, cli):
    cfg = cfg_file(tmp_path, models, sft={"batch_size": 4, "epochs": 1.0, "warmup_steps": 0},
                   rl={"mode": "online", "algo": "grpo", "steps": 1, "problems_per_step": 1,
                       "samples_per_problem": 2, "max_new_tokens": 4, "sft_batch": 1})
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress", "model.use_sft_model=false")
    assert code == 0, out
    assert f"rl: actor {models['gpt2']} (model.path)" in out
    code, out = cli("train", "--stage", "sft", "-c", cfg, "--no-progress")
    assert code == 0, out
    final = tmp_path / "run" / "sft" / "final"
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress", "--overwrite")
    assert code == 0, out
    assert f"rl: actor {final} (this run's SFT model, fine-tuned from model.path {models['gpt2']})" in out
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress", "--overwrite", "model.use_sft_model=false")
    assert code == 0, out
    assert f"rl: actor {models['gpt2']} (model.path)" in out
    code, out = cli("train", "--stage", "rl", "-c", cfg, "--no-progress", "--overwrite", f"model.path={final}")
    assert code == 0, out
    assert f"rl: actor {final} (model.path: this run's SFT model)" in out  # as the docs used to ask
