"""A short RL run on the task family with a tiny random model, used by test_resume.py (run as a script so the
test can kill it with SIGKILL). Arguments: OUT_DIR STEPS [--resume]."""

from __future__ import annotations

import json
import sys

import torch

from coderl.models.actor import tiny_gpt2
from coderl.models.tokenizer import train_bpe
from coderl.rl.config import RLConfig
from coderl.rl.loop import train_rl
from coderl.sandbox import Executor
from coderl.tasks.family import corpus_text, generate_tasks
from coderl.tasks.prompt import format_prompt


def main() -> None:
    out, steps, resume = sys.argv[1], int(sys.argv[2]), "--resume" in sys.argv
    torch.manual_seed(0)
    tasks = generate_tasks("train", 64, seed=0)
    tok = train_bpe([format_prompt(p) for p in tasks] + [corpus_text(tasks)], vocab_size=300)
    model = tiny_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=96, seed=0)
    cfg = RLConfig(algo="grpo", steps=steps, problems_per_step=4, samples_per_problem=2, max_new_tokens=24,
                   checkpoint_every=1, lr=1e-3, sft_weight=0.5, sft_batch=4)
    pairs = [(format_prompt(p), p.solutions[0]) for p in tasks]
    with Executor(workers=1, timeout=1.0) as ex:
        hist = train_rl(model, tok, tasks, ex, cfg, sft_pairs=pairs, out_dir=out, resume=resume, progress=False)
    print(json.dumps({"steps": [h["step"] for h in hist], "rewards": [h["reward"] for h in hist]}))


if __name__ == "__main__":
    main()
