"""What a user gets wrong gets a one-line error naming the file/field and exit status 2."""

from __future__ import annotations

import json

import tiny_models as tm
import yaml


def cfg_file(tmp_path, **over):
    data = {"out": str(tmp_path / "run"), "data": {"dataset": "apps", "path": str(tm.APPS_DIR), "train_split": "test"},
            "sampling": {"n": 1, "max_new_tokens": 8}, **over}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_missing_config_file(tmp_path, cli):
    code, out = cli("sample", "-c", tmp_path / "nope.yaml")
    assert code == 2 and "nope.yaml: no such config file" in out


def test_unknown_field_and_bad_type(tmp_path, cli):
    code, out = cli("sample", "-c", cfg_file(tmp_path), "sampling.temprature=1")
    assert code == 2 and "unknown field 'sampling.temprature'" in out
    code, out = cli("train", "--stage", "rl", "-c", cfg_file(tmp_path), "rl.steps=many")
    assert code == 2 and "field 'rl.steps' must be int" in out
    code, out = cli("train", "--stage", "critic", "-c", cfg_file(tmp_path))
    assert code == 2 and "--stage must be one of sft, rl, repair" in out
    code, out = cli("train", "--stage", "repair", "-c", cfg_file(tmp_path))  # a config with no model in it
    assert code == 2 and "no actor for the repair stage" in out


def test_missing_model_and_data(tmp_path, models, cli):
    code, out = cli("sample", "-c", cfg_file(tmp_path), f"model.path={tmp_path / 'no-model'}")
    assert code == 2 and "no-model" in out and "does not exist" in out
    code, out = cli("sample", "-c", cfg_file(tmp_path))
    assert code == 2 and "set model.path" in out
    empty = tmp_path / "empty-model"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    code, out = cli("sample", "-c", cfg_file(tmp_path), f"model.path={empty}")
    assert code == 2 and "holds no weights" in out
    code, out = cli("sample", "-c", cfg_file(tmp_path), f"model.path={models['gpt2']}",
                    f"data.path={tmp_path / 'no-apps'}")
    assert code == 2 and "no-apps" in out and "no such file or directory" in out


def test_incompatible_model(tmp_path, models, cli):
    code, out = cli("sample", "-c", cfg_file(tmp_path), f"model.path={models['gpt2']}", "model.kind=seq2seq")
    assert code == 2 and "is not an encoder-decoder model" in out
    bad = tmp_path / "weird"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "no-such-arch"}))
    (bad / "model.safetensors").write_bytes(b"")
    (bad / "tokenizer.json").write_text("{}")
    code, out = cli("sample", "-c", cfg_file(tmp_path), f"model.path={bad}")
    assert code == 2 and "unknown architecture" in out and "no-such-arch" in out


def test_stage_order_errors(tmp_path, models, cli):
    cfg = cfg_file(tmp_path, model={"path": str(models["gpt2"])})
    code, out = cli("critic", "train", "-c", cfg)
    assert code == 2 and "samples.jsonl: no such file" in out and "coderl sample" in out
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "samples.jsonl").write_text(json.dumps({"task_id": "APPS/test/0000", "completion": "x"}) + "\n")
    code, out = cli("critic", "train", "-c", cfg)
    assert code == 2 and "samples.verdicts.jsonl: no such file" in out
    (tmp_path / "run" / "samples.jsonl").write_text(json.dumps({"task_id": "APPS/test/0000"}) + "\n")
    (tmp_path / "run" / "samples.verdicts.jsonl").write_text("")
    code, out = cli("critic", "train", "-c", cfg)
    assert code == 2 and "samples.jsonl:1: field 'completion': missing" in out


def test_precision_rejected_or_run_on_cpu(tmp_path, models, cli):
    cfg = cfg_file(tmp_path, model={"path": str(models["gpt2"])}, sft={"precision": "fp16", "batch_size": 2})
    code, out = cli("train", "--stage", "sft", "-c", cfg, "--no-progress")
    assert code == 2 and "'fp16' needs a CUDA device" in out and "use 'bf16' or 'fp32'" in out
    code, out = cli("train", "--stage", "sft", "-c", cfg, "sft.precision=bf16", "sft.grad_accum=2", "--no-progress")
    assert code == 0, out


def test_critic_train_without_verdicts_prints_commands_that_work_as_printed(tmp_path, models, cli):
    import shlex

    cfg = cfg_file(tmp_path, model={"path": str(models["gpt2"])}, critic={"epochs": 1, "batch_size": 4},
                   execution={"workers": 1})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "samples.jsonl").write_text(
        "".join(json.dumps({"task_id": f"APPS/test/000{i}", "completion": "print(1)\n"}) + "\n" for i in range(4)))
    code, out = cli("critic", "train", "-c", cfg)
    assert code == 2 and "samples.verdicts.jsonl: no such file" in out
    command = out.split("run `", 1)[1].split("`", 1)[0]
    verdicts = out.split("pass `--verdicts ", 1)[1].split("`", 1)[0]
    assert command.startswith("coderl eval ")
    code, text = cli(*shlex.split(command)[1:])
    assert code == 0, text
    code, text = cli("critic", "train", "-c", cfg, "--verdicts", *shlex.split(verdicts), "--no-progress")
    assert code == 0, text
    assert json.loads(text.strip().splitlines()[-1])["examples"] > 4
