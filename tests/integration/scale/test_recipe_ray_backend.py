"""A recipe's exec stage with `execution.backend: ray` writes the verdicts the local backend writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.mark.slow
def test_exec_stage_on_ray_gives_the_local_verdicts(ray_cluster, tmp_path):
    from coderl.pipelines.inputs import make_executor
    from coderl.pipelines.recipe import load_recipe
    from coderl.pipelines.stages import run_exec
    from coderl.scale.ray_executor import RayExecutor
    from coderl.tasks import load_problems

    problems = load_problems("mbpp", str(FIXTURES / "mbpp_mini.jsonl"), "test")
    samples = tmp_path / "samples.jsonl"
    with open(samples, "w") as f:
        for p in problems:
            for k, text in enumerate([p.solutions[0], "def broken(:\n", "raise ValueError('no')\n"]):
                f.write(json.dumps({"task_id": p.task_id, "completion": text, "sample": k}) + "\n")
    common = ["data.dataset=mbpp", f"data.path={FIXTURES / 'mbpp_mini.jsonl'}", "data.train_split=test",
              "execution.workers=1", "execution.timeout=3"]
    ray_cfg = load_recipe(None, [*common, "execution.backend=ray", f"execution.address={ray_cluster}"])
    assert isinstance(make_executor(ray_cfg), RayExecutor)
    outcomes = {}
    for name, cfg in (("ray", ray_cfg), ("local", load_recipe(None, common))):
        out = tmp_path / f"{name}.verdicts.jsonl"
        run_exec(cfg, samples, out, resume=False, progress=False)
        outcomes[name] = [(r["line"], r["outcome"]) for r in map(json.loads, out.read_text().splitlines())]
    assert outcomes["ray"] == outcomes["local"]
    assert {o for _, o in outcomes["local"]} == {"passed", "compile_error", "runtime_error"}
