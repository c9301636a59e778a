"""`coderl demo --quick` end to end, as CI runs it: real numbers in summary.json, parameters that changed."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

CODERL = Path(sys.executable).parent / "coderl"


@pytest.mark.slow
def test_quick_demo_writes_real_numbers_and_trains(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([str(CODERL), "demo", "--quick", "--out", str(out), "--no-progress"], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    for arm in ("before", "after", "control"):
        for k in ("pass@1", "pass@5", "greedy"):
            v = s[arm][k]
            assert isinstance(v, float) and 0.0 <= v <= 1.0 and not math.isnan(v), (arm, k, v)
        assert s[arm]["pass@5"] >= s[arm]["pass@1"] - 1e-12  # pass@k grows with k for the same samples
    for key in ("outcomes_before", "outcomes_after"):
        assert math.isclose(sum(s[key].values()), 1.0, abs_tol=1e-9)
    assert s["rl_steps"] >= 1 and s["seconds"]["rl"] > 0 and s["seconds"]["total"] > 0
    assert 0.0 <= s["critic"]["accuracy"] <= 1.0 and s["critic"]["n"] > 0
    assert s["algorithm"] == "rloo"  # the default (docs/BENCHMARKS.md, the comparison at equal wall time)
    assert json.loads((out / "config.json").read_text())["rl"]["leave_one_out"] is True
    for f in ("report.md", "rl_curve.png", "outcomes.png", "config.json"):
        assert (out / f).stat().st_size > 0, f
    sft = load_file(str(next((out / "sft").glob("*.safetensors"))))
    final = load_file(str(next((out / "final").glob("*.safetensors"))))
    changed = [k for k in sft if (sft[k] != final[k]).any()]
    assert changed, "RL did not change any parameter"
    assert json.loads((out / "final" / "coderl.json").read_text())["config"]["seed"] == 0
