"""The single-machine path (coderl exec, train_rl with the local executor) never imports ray or vllm (accelerate, when
installed, is imported by transformers itself, so it is not checked)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = r'''
import json, sys, tempfile, os
from typer.testing import CliRunner
from coderl.cli.main import app

d = tempfile.mkdtemp()
req = os.path.join(d, "r.jsonl")
with open(req, "w") as f:
    f.write(json.dumps({"id": "a", "program": "def f():\n    return 1\n",
                        "tests": {"type": "assert", "asserts": ["assert f() == 1"]}}) + "\n")
res = CliRunner().invoke(app, ["exec", req, "-o", os.path.join(d, "out.jsonl"), "--workers", "1", "--no-progress"])
assert res.exit_code == 0, res.output
assert json.loads(open(os.path.join(d, "out.jsonl")).read())["outcome"] == "passed"

from coderl.models.actor import tiny_gpt2
from coderl.models.tokenizer import train_bpe
from coderl.rl.config import RLConfig
from coderl.rl.loop import train_rl
from coderl.sandbox import Executor
from coderl.tasks.family import corpus_text, generate_tasks
from coderl.tasks.prompt import format_prompt
import coderl.scale, coderl.models.vllm_backend  # the packages themselves must not pull their engines in

tasks = generate_tasks("train", 8, seed=0)
tok = train_bpe([format_prompt(p) for p in tasks] + [corpus_text(tasks)], vocab_size=300)
model = tiny_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=96, seed=0)
cfg = RLConfig(algo="grpo", steps=1, problems_per_step=2, samples_per_problem=2, max_new_tokens=8, checkpoint_every=0)
with Executor(workers=1, timeout=1.0) as ex:
    hist = train_rl(model, tok, tasks, ex, cfg, progress=False)
assert len(hist) == 1
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("ray", "vllm"))))
'''


@pytest.mark.slow
def test_local_path_imports_no_scale_engine():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
