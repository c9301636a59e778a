"""One rank of a 2-process CPU (gloo) run of train_rl_distributed; used by test_multigpu.py via torchrun.
Writes OUT/rank{R}.json: parameter checksums before/after, and the programs this rank executed."""

from __future__ import annotations

import json
import os
import sys

import torch

from coderl.models.actor import tiny_gpt2
from coderl.models.tokenizer import train_bpe
from coderl.rl.config import RLConfig
from coderl.sandbox import Executor
from coderl.scale.multigpu import train_rl_distributed
from coderl.tasks.family import corpus_text, generate_tasks
from coderl.tasks.prompt import format_prompt


class Recorder:
    def __init__(self, ex):
        self.ex, self.programs = ex, []

    def run(self, reqs):
        self.programs += [r["program"] for r in reqs]
        return self.ex.run(reqs)


def main() -> None:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    out, uid_base = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    acc = Accelerator(cpu=True, kwargs_handlers=[DistributedDataParallelKwargs(broadcast_buffers=False)])
    tasks = generate_tasks("train", 32, seed=0)
    tok = train_bpe([format_prompt(p) for p in tasks] + [corpus_text(tasks)], vocab_size=300)
    # a different initialisation per rank: DDP must broadcast rank 0's weights
    model = tiny_gpt2(tok, n_layer=1, n_embd=32, n_head=2, n_positions=96, seed=acc.process_index)
    cfg = RLConfig(algo="grpo", steps=3, problems_per_step=4, samples_per_problem=2, max_new_tokens=24,
                   checkpoint_every=0, lr=1e-2, sft_weight=0.5, sft_batch=4)
    pairs = [(format_prompt(p), p.solutions[0]) for p in tasks]
    with Executor(workers=1, timeout=1.0, uid_base=uid_base + acc.process_index) as ex:
        rec = Recorder(ex)
        model_ref = {k: v.clone() for k, v in model.state_dict().items()}
        hist = train_rl_distributed(model, tok, tasks, rec, cfg, accelerator=acc, sft_pairs=pairs, progress=False)
    final = {k: v.double().sum().item() for k, v in model.state_dict().items()}
    start = {k: v.double().sum().item() for k, v in model_ref.items()}
    with open(os.path.join(out, f"rank{acc.process_index}.json"), "w") as f:
        json.dump({"world": acc.num_processes, "distributed_type": str(acc.distributed_type), "final": final,
                   "start": start, "programs": rec.programs, "steps": len(hist)}, f)


if __name__ == "__main__":
    main()
