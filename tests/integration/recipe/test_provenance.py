"""Derived files are matched to what they were made from: after re-sampling, the chained RL run recomputes the
stale verdicts, critic and scores (never reuses another program's verdict by line number), and a --resume on
changed inputs is refused."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest
import tiny_models as tm
import yaml

pytestmark = pytest.mark.slow


def write_config(tmp_path, name, models, seed):
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump({
        "out": str(tmp_path / "run"), "model": {"path": str(models["gpt2"])},
        "data": {"dataset": "mbpp", "path": str(tm.MBPP_FILE), "train_split": "all"},
        "sampling": {"n": 2, "max_new_tokens": 12, "temperature": 1.0, "seed": seed}, "execution": {"workers": 2},
        "critic": {"epochs": 1, "lr": 0.001, "batch_size": 8},
        "rl": {"mode": "offline", "algo": "coderl", "steps": 2, "problems_per_step": 2, "samples_per_problem": 2,
               "lr": 0.001, "sft_batch": 2, "max_new_tokens": 12}}))
    return p


def with_solutions(samples, models, first: bool) -> None:
    """Put each problem's ground truth (with the actor's tokens for it) first or last in the samples file: random
    tiny models only write failing programs, and passing ones on other lines than before expose line matching."""
    from coderl.models.tokenizer import load_tokenizer
    from coderl.tasks import load_problems

    tok = load_tokenizer(models["gpt2"])
    gt = [json.dumps({"task_id": p.task_id, "completion": p.solutions[0], "sample": 9, "finished": True,
                      "completion_ids": tok(p.solutions[0], add_special_tokens=False)["input_ids"]
                      + [tok.eos_token_id]}) + "\n" for p in load_problems("mbpp", tm.MBPP_FILE, "all")]
    lines = samples.read_text().splitlines(keepends=True)
    samples.write_text("".join(gt + lines if first else lines + gt))


def records(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_resampling_then_rl_recomputes_stale_verdicts_critic_and_scores(tmp_path, models, cli):
    from coderl.pipelines.critic import critic_fingerprint, score_key
    from coderl.pipelines.inputs import load_split
    from coderl.pipelines.recipe import load_recipe
    from coderl.pipelines.sampling import labelled_samples

    run = tmp_path / "run"
    cfg1, cfg2 = write_config(tmp_path, "one", models, 0), write_config(tmp_path, "two", models, 1)
    code, out = cli("sample", "-c", cfg1, "--no-progress")
    assert code == 0, out
    with_solutions(run / "samples.jsonl", models, first=False)
    code, out = cli("train", "--stage", "rl", "-c", cfg1, "--no-progress")
    assert code == 0, out
    old_verdicts = {v["line"]: v["outcome"] for v in records(run / "samples.verdicts.jsonl")}
    assert old_verdicts[1] != "passed" and old_verdicts[17] == "passed"

    # Re-sample (other seed), the ground truth now on lines 1-8, and run RL again
    code, out = cli("sample", "-c", cfg2, "--no-progress", "--overwrite")
    assert code == 0, out
    with_solutions(run / "samples.jsonl", models, first=True)
    code, out = cli("train", "--stage", "rl", "-c", cfg2, "--no-progress", "--overwrite")
    assert code == 0, out
    lines = out.splitlines()
    assert any(x.startswith("exec: ") and "stale ones dropped (their programs or the execution settings changed)"
               in x for x in lines), out
    assert any(x.startswith("critic: ") and "was trained on other inputs" in x and "training it again" in x
               for x in lines), out
    assert any(x.startswith("critic score: ") and "stale ones dropped" in x for x in lines), out

    # Every sample's verdict is its own program's: the same outcomes as a fresh `coderl eval` of the file
    code, out = cli("eval", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--split", "all", "--samples",
                    run / "samples.jsonl", "--no-examples", "--timeout", "4", "--k", "1", "--bootstrap", "0",
                    "--no-chart", "--no-progress", "-o", tmp_path / "fresh")
    assert code == 0, out
    fresh = {v["line"]: v["outcome"] for v in records(tmp_path / "fresh" / "verdicts.jsonl")}
    cfg = load_recipe(cfg2)
    rows = labelled_samples(cfg, run / "samples.jsonl", run / "samples.verdicts.jsonl", load_split(cfg))
    assert {r.line: r.verdict["outcome"] for r in rows} == fresh
    assert all(fresh[line] == "passed" for line in range(1, 9))
    assert any(fresh[line] != old_verdicts[line] for line in fresh)  # line matching would have mislabelled these
    # ... and every score is of that program and outcome, by the critic now in run/critic
    scores = {r["key"]: r for r in records(run / "scored.jsonl")}
    made_by = critic_fingerprint(run / "critic")
    for r in rows:
        s = scores[score_key(r)]
        assert s["outcome"] == r.verdict["outcome"] and s["critic"] == made_by
        assert len(s["token_probs"]) == len(r.sample["completion_ids"])


def test_resume_on_changed_inputs_is_refused(tmp_path, models, cli):
    run = tmp_path / "run"
    cfg1, cfg2 = write_config(tmp_path, "one", models, 0), write_config(tmp_path, "two", models, 1)
    code, out = cli("train", "--stage", "rl", "-c", cfg1, "--no-progress")
    assert code == 0, out
    code, out = cli("critic", "train", "-c", cfg1, "--no-progress", "--resume")
    assert code == 0 and "already trained on these samples and settings; kept" in out
    code, out = cli("critic", "train", "-c", cfg1, "--no-progress", "--resume", "critic.lr=0.01")
    assert code == 2 and "was trained on other inputs" in out and "--overwrite" in out

    shutil.copy(run / "samples.verdicts.jsonl", tmp_path / "old.verdicts.jsonl")
    code, out = cli("sample", "-c", cfg2, "--no-progress", "--overwrite")
    assert code == 0, out
    # the verdicts on disk are of the old programs: refused, with the command that makes them
    code, out = cli("critic", "score", "-c", cfg2, "--no-progress", "--resume")
    assert code == 2 and "no verdict in" in out and "for this program" in out
    hint = out.split("run `", 1)[1].split("`", 1)[0]
    verdicts = out.split("pass `--verdicts ", 1)[1].split("`", 1)[0]
    code, out = cli(*shlex.split(hint)[1:])
    assert code == 0, out  # the commands work as printed
    code, out = cli("critic", "train", "-c", cfg2, "--no-progress", "--overwrite", "--verdicts", verdicts)
    assert code == 0, out
    # RL continued on a pool that changed under it would mix two experiments
    code, out = cli("train", "--stage", "rl", "-c", cfg2, "--no-progress", "--resume")
    assert code == 2 and "cannot resume" in out and "inputs.pool" in out
    # the samples drawn by another model are refused too
    code, out = cli("sample", "-c", cfg2, "--no-progress", "--resume", f"model.path={models['t5']}")
    assert code == 2 and "model_fingerprint" in out and "--overwrite" in out
