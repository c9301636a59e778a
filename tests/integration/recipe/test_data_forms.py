"""Data as users have it, from the CLI: files of Hugging Face rows (APPS's codeparrot/apps rows, MBPP's sanitized
JSON, parquet shards), a local copy of a hub repository, a hub id; split errors that name the split; task ids
that do not depend on how the path is written; a pointer to `coderl data export` where a problems file is due."""

from __future__ import annotations

import json
import sys
import time
import types

import pytest
import tiny_models as tm
import yaml

from coderl.tasks.problem import read_problems

APPS_ROWS = tm.FIXTURES / "apps_hf_rows.jsonl"


def export(cli, tmp_path, *args: str) -> list:
    out = tmp_path / "problems.jsonl"
    code, text = cli("data", "export", *args, "-o", out)
    assert code == 0, text
    return read_problems(out)


def write_parquet(path, rows) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def sanitized(record: dict) -> dict:
    """An original MBPP record in the layout of MBPP's sanitized set (prompt, test_imports)."""
    return {"source_file": "x.py", "task_id": record["task_id"], "prompt": record["text"], "code": record["code"],
            "test_imports": [], "test_list": record["test_list"]}


def test_hf_row_files_load_from_the_cli(tmp_path, models, cli):
    by_id = {p.task_id: p for p in export(cli, tmp_path, "--dataset", "apps", "--path", str(APPS_ROWS), "--split",
                                          "test")}
    assert list(by_id) == ["APPS/test/0000", "APPS/test/0001"]  # the third row has no tests
    rows = [json.loads(x) for x in APPS_ROWS.read_text().splitlines()]
    write_parquet(tmp_path / "apps" / "test-00000-of-00001.parquet", rows)  # the hub's shard layout
    from_parquet = export(cli, tmp_path, "--dataset", "apps", "--path", str(tmp_path / "apps"), "--split", "test")
    assert [p.to_dict() for p in from_parquet] == [p.to_dict() for p in by_id.values()]

    original = export(cli, tmp_path, "--dataset", "mbpp", "--path", str(tm.MBPP_FILE), "--split", "all")
    records = [json.loads(x) for x in tm.MBPP_FILE.read_text().splitlines()]
    (tmp_path / "sanitized-mbpp.json").write_text(json.dumps([sanitized(r) for r in records]))  # a JSON array
    from_json = export(cli, tmp_path, "--dataset", "mbpp", "--path", str(tmp_path / "sanitized-mbpp.json"),
                       "--split", "all")
    assert [(p.task_id, p.tests["asserts"], p.solutions) for p in from_json] == \
        [(p.task_id, p.tests["asserts"], p.solutions) for p in original]
    # a local copy of the hub repository: one parquet shard per config and split; config "full" is used
    repo = tmp_path / "mbpp-repo"
    test_rows = [r for r in records if 11 <= r["task_id"] <= 510]
    write_parquet(repo / "full" / "test-00000-of-00001.parquet", test_rows)
    write_parquet(repo / "sanitized" / "test-00000-of-00001.parquet", [sanitized(r) for r in test_rows[:1]])
    assert [p.task_id for p in export(cli, tmp_path, "--dataset", "mbpp", "--path", str(repo), "--split",
                                      "test")] == ["Mbpp/11", "Mbpp/12", "Mbpp/13"]
    assert [p.task_id for p in export(cli, tmp_path, "--dataset", "mbpp", "--path", str(repo / "sanitized"),
                                      "--split", "test")] == ["Mbpp/11"]

    # and as a recipe's data.path: sampling reads the rows file
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"out": str(tmp_path / "run"), "model": {"path": str(models["gpt2"])},
                                   "data": {"dataset": "apps", "path": str(APPS_ROWS), "train_split": "test"},
                                   "sampling": {"n": 1, "max_new_tokens": 4}}))
    code, out = cli("sample", "-c", cfg, "--no-progress")
    assert code == 0, out
    samples = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert [s["task_id"] for s in samples] == ["APPS/test/0000", "APPS/test/0001"]


def test_a_hub_id_as_the_path_goes_to_datasets(tmp_path, cli, monkeypatch):
    import coderl.utils.hub as hub

    # imported once, before the fake: deleting it from sys.modules and importing it again would leave two copies
    # of its submodules, which breaks later users of datasets in the same process (TRL's dataset fingerprinting)
    real = pytest.importorskip("datasets")
    records = [json.loads(x) for x in tm.MBPP_FILE.read_text().splitlines()]
    calls = []

    def load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        return [r for r in records if 11 <= r["task_id"] <= 510]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    got = export(cli, tmp_path, "--dataset", "mbpp", "--path", "someone/mbpp-mirror", "--split", "test")
    assert calls == [("someone/mbpp-mirror", "full", "test")] and len(got) == 3
    # the real library, with the hub out of reach: an answer at once, naming the id
    monkeypatch.setitem(sys.modules, "datasets", real)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hub, "_available", None)
    t0 = time.monotonic()
    code, out = cli("data", "export", "--dataset", "mbpp", "--path", "no-such-org/no-such-data", "-o",
                    tmp_path / "x.jsonl")
    assert code == 2 and "no-such-org/no-such-data" in out and "cannot be reached" in out, out
    assert time.monotonic() - t0 < 20


def test_split_errors_name_the_split(tmp_path, cli):
    code, out = cli("data", "export", "--dataset", "apps", "--path", tm.APPS_DIR, "--split", "valid", "-o",
                    tmp_path / "x.jsonl")
    assert code == 2 and "no split 'valid' here (it has: test, train)" in out
    code, out = cli("data", "export", "--dataset", "apps", "--path", tm.APPS_DIR / "test", "--split", "train", "-o",
                    tmp_path / "x.jsonl")
    assert code == 2 and "APPS's 'test' split folder, but split 'train' was asked for" in out
    code, out = cli("data", "export", "--dataset", "mbpp", "--path", tm.MBPP_FILE, "--split", "valid", "-o",
                    tmp_path / "x.jsonl")
    assert code == 2 and "unknown MBPP split 'valid'" in out
    write_parquet(tmp_path / "repo" / "train-00000-of-00001.parquet", [json.loads(tm.MBPP_FILE.read_text()
                                                                                  .splitlines()[0])])
    code, out = cli("data", "export", "--dataset", "mbpp", "--path", tmp_path / "repo", "--split", "test", "-o",
                    tmp_path / "x.jsonl")
    assert code == 2 and "no split 'test' here" in out


def test_task_ids_do_not_depend_on_how_the_path_is_written(tmp_path, cli, monkeypatch):
    root = [p.task_id for p in export(cli, tmp_path, "--dataset", "apps", "--path", str(tm.APPS_DIR), "--split",
                                      "test")]
    assert root == ["APPS/test/0000", "APPS/test/0001", "APPS/test/0002", "APPS/test/0003"]
    monkeypatch.chdir(tm.APPS_DIR)
    for path, split in (("test", None), ("./test/", "test"), ("../apps_mini/test", None)):
        got = export(cli, tmp_path, "--dataset", "apps", "--path", path, *(["--split", split] if split else []))
        assert [p.task_id for p in got] == root, path
    assert [p.task_id for p in export(cli, tmp_path, "--dataset", "apps", "--path", "test/0002")] == \
        ["APPS/test/0002"]


def test_generate_given_something_else_than_a_problems_file_points_to_data_export(tmp_path, models, cli):
    for problems in (tm.MBPP_FILE, "apps"):  # MBPP's own format; a benchmark name
        code, out = cli("generate", "--actor", models["gpt2"], "--problems", problems, "-o", tmp_path / "g.jsonl",
                        "--no-progress")
        assert code == 2 and "`coderl data export --dataset mbpp --path mbpp.jsonl --split test -o " \
                              "problems.jsonl`" in out, out


@pytest.mark.parametrize("bad, message", [
    ("[1, 2]", "expected a JSON array of objects (rows) or JSON Lines"),
    ("not json\n", "not valid JSON"),
])
def test_a_malformed_rows_file_names_itself(tmp_path, cli, bad, message):
    f = tmp_path / "rows.json"
    f.write_text(bad)
    code, out = cli("data", "export", "--dataset", "mbpp", "--path", f, "-o", tmp_path / "x.jsonl")
    assert code == 2 and str(f) in out and message in out, out
