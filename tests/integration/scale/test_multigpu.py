"""train_rl_distributed on 2 CPU processes (gloo): ranks sample different programs yet end with identical
weights, i.e. gradients were averaged across ranks every step."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RAY_UID_BASE

CHILD = Path(__file__).with_name("ddp_child.py")


@pytest.mark.slow
def test_two_process_ddp_keeps_ranks_in_sync(tmp_path):
    pytest.importorskip("accelerate")
    with socket.socket() as sock:  # torchrun's --master_port 0 hangs here; pick a free port ourselves
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           str(CHILD), str(tmp_path), str(RAY_UID_BASE + 16)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2 and "MULTI_CPU" in r0["distributed_type"]
    assert r0["steps"] == r1["steps"] == 3
    assert r0["programs"] != r1["programs"]  # each rank trained on its own samples
    assert r0["start"] != r1["start"]  # different initialisations before DDP's broadcast
    for k in r0["final"]:
        assert r0["final"][k] == pytest.approx(r1["final"][k], rel=1e-6, abs=1e-6), k
    assert any(abs(r0["final"][k] - r0["start"][k]) > 1e-4 for k in r0["final"])  # training moved the weights
