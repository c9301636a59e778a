"""benchmarks/gpu_check.py: skips cleanly without CUDA, and its code path runs on a tiny model on the CPU; on a
CUDA machine (marked gpu) the real-size check runs and vLLM must agree with the trainer."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("needs the train extra", allow_module_level=True)

import torch  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "gpu_check.py"


def run(*args: str, timeout: int = 300) -> tuple[int, list[dict]]:
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, records


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA path")
def test_without_cuda_it_says_it_skipped_and_exits_0():
    rc, records = run()
    assert rc == 0 and len(records) == 1 and "no CUDA" in records[0]["skipped"]


def test_the_tiny_model_goes_through_every_check_on_the_cpu():
    rc, records = run("--tiny", "--device", "cpu")
    assert rc == 0
    by = {(r["check"], r.get("backend"), r.get("lora")): r for r in records}
    for backend in ("loop", "hf"):
        gen = by["generate", backend, None]
        assert gen["new_tokens"] == 4 * 16 and gen["tokens_per_s"] > 0  # a random model runs every row to the end
    assert by["vllm", None, None]["skipped"] == "needs CUDA"
    full = by["rl_step", None, False]
    assert full["seconds"] > 0 and full["tokens"] == 4 * (16 + 16) and full["peak_gpu_gib"] is None
    lora = by["rl_step", None, True]
    if importlib.util.find_spec("peft") is not None:
        assert 0 < lora["trainable_params"] < full["trainable_params"]
    else:
        assert lora["skipped"] == "peft is not installed"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_real_size_check_on_a_gpu():
    rc, records = run(timeout=600)
    by = {r["check"]: r for r in records}
    assert by["done"]["seconds"] < 300
    if "skipped" not in by["vllm"]:
        assert rc == 0 and by["vllm"]["agree"], by["vllm"]
