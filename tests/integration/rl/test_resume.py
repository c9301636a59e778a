"""A short RL run is killed with SIGKILL mid-way and resumed from its last checkpoint to completion."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

CHILD = Path(__file__).with_name("rl_child.py")


def _latest_step(out: Path) -> int:
    marker = out / "checkpoints" / "latest"
    return int(marker.read_text().split("-")[1]) if marker.is_file() else 0


@pytest.mark.slow
def test_kill_9_then_resume_completes_the_run(tmp_path):
    steps = 12
    proc = subprocess.Popen([sys.executable, str(CHILD), str(tmp_path), str(steps)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _latest_step(tmp_path) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _latest_step(tmp_path)
    assert 2 <= killed_at < steps, f"the run was not interrupted mid-way (checkpoint {killed_at} of {steps})"
    saved = load_file(str(next((tmp_path / "checkpoints" / f"step-{killed_at:06d}").glob("*.safetensors"))))

    done = subprocess.run([sys.executable, str(CHILD), str(tmp_path), str(steps), "--resume"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["steps"] == list(range(1, steps + 1))  # history before the kill was kept, nothing repeated
    assert _latest_step(tmp_path) == steps
    final = load_file(str(next((tmp_path / "checkpoints" / f"step-{steps:06d}").glob("*.safetensors"))))
    assert any((final[k] != saved[k]).any() for k in saved), "resumed training did not change the parameters"
    assert not list((tmp_path / "checkpoints").glob(".*.tmp")), "a temporary checkpoint was left behind"


def test_resume_refuses_a_different_configuration(tmp_path):
    from coderl.train.checkpoint import check_same_config

    with pytest.raises(ValueError, match="configuration differs.*lr"):
        check_same_config({"rl": {"lr": 1e-3}}, {"rl": {"lr": 2e-3}}, tmp_path)
