"""One GPU check of a real-size model, ready for when a GPU machine is available (issue 15, item 5).

A randomly initialised model of a real configuration (default: Qwen2.5-Coder-1.5B's shape, built from
``Qwen2Config``: nothing is downloaded) goes through what an RL run on a GPU does, and the script prints one JSON
line per measurement:

* ``generate``: generation tokens/s with coderl's two Hugging Face paths (its own KV-cache loop and
  ``model.generate``), bf16 weights, ``--batch`` prompts of ``--prompt-len`` random tokens, ``--new`` new tokens
  each at temperature 1 (a random model almost never emits eos, so every row runs to the end);
* ``vllm``: the same with vLLM (``pip install 'coderl[vllm]'``), from the same weights saved to a temporary
  directory, and the agreement of vLLM's log-probability of each sampled token with the trainer's
  (``coderl.models.logprobs.completion_logprobs`` on the bf16 model): mean and max absolute difference, and
  ``agree`` when the mean is below ``--logprob-tol``;
* ``rl_step``: the time and peak GPU memory of one RL update (``coderl.rl.loop.update``: GRPO loss over the
  generated batch, fp32 weights with bf16 autocast, AdamW, ``--grad-accum`` micro-batches), with all weights
  trained and with LoRA adapters (r=16; needs peft).

It runs in under 5 minutes on one H100/H200-class GPU. Without CUDA it prints that it skipped and exits 0;
``--tiny --device cpu`` runs the same code on a model of a few hundred thousand parameters (the test suite does).
Exit status 1 when vLLM and the trainer disagree.

    .venv/bin/python benchmarks/gpu_check.py                      # on a GPU machine
    .venv/bin/python benchmarks/gpu_check.py --tiny --device cpu  # the same path on CPU, in seconds
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import random
import sys
import tempfile
import time
from types import SimpleNamespace

# Qwen2.5-Coder-1.5B's published configuration (config.json of the checkpoint); only the shape matters here.
QWEN25_CODER_15B = dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                        num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                        rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)
TINY = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=1024, rope_theta=10_000.0, rms_norm_eps=1e-6,
            tie_word_embeddings=True)
EOS, PAD = 3, 0  # token ids of the random model: any ids work, as long as the prompts avoid eos


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def build(shape: dict, device: str, dtype):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(**shape, bos_token_id=1, eos_token_id=EOS, pad_token_id=PAD)
    torch.manual_seed(0)
    with torch.device(device):  # initialise in place: a 1.5B model on the CPU first would take a minute
        model = Qwen2ForCausalLM(cfg)
    return model.to(dtype).eval()


def prompts(vocab: int, batch: int, length: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(4, vocab) for _ in range(length)] for _ in range(batch)]


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_generate(model, rows: list[list[int]], new: int, backend: str, device: str) -> tuple[dict, list]:
    from coderl.models.generate import SamplingConfig, generate_ids

    cfg = SamplingConfig(temperature=1.0, top_p=1.0, max_new_tokens=new, seed=0)
    generate_ids(model, rows[:2], SamplingConfig(temperature=1.0, max_new_tokens=4, seed=0), [EOS], PAD,
                 backend=backend)  # warm-up: kernels, allocator
    sync(device)
    t0 = time.perf_counter()
    out = generate_ids(model, rows, cfg, [EOS], PAD, batch_size=len(rows), backend=backend)
    sync(device)
    secs = time.perf_counter() - t0
    tokens = sum(len(ids) for ids, _ in out)
    return {"check": "generate", "backend": backend, "batch": len(rows), "new_tokens": tokens,
            "seconds": round(secs, 3), "tokens_per_s": round(tokens / secs, 1)}, out


def vllm_check(model, rows: list[list[int]], new: int, tol: float, device: str) -> dict:
    if importlib.util.find_spec("vllm") is None or not device.startswith("cuda"):
        return {"check": "vllm", "skipped": "vllm is not installed" if device.startswith("cuda") else "needs CUDA"}
    import torch
    import vllm

    from coderl.models.logprobs import completion_logprobs

    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        t0 = time.perf_counter()
        llm = vllm.LLM(model=d, skip_tokenizer_init=True, dtype="bfloat16", gpu_memory_utilization=0.35, seed=0)
        load_s = time.perf_counter() - t0
        params = vllm.SamplingParams(n=1, temperature=1.0, top_p=1.0, top_k=-1, max_tokens=new, min_tokens=0,
                                     stop_token_ids=[EOS], logprobs=0, detokenize=False, seed=0)
        llm.generate([{"prompt_token_ids": r} for r in rows[:2]], params, use_tqdm=False)  # warm-up
        t0 = time.perf_counter()
        outs = llm.generate([{"prompt_token_ids": r} for r in rows], params, use_tqdm=False)
        secs = time.perf_counter() - t0
    samples = [o.outputs[0] for o in outs]
    tokens = sum(len(s.token_ids) for s in samples)
    # vLLM's log-probability of each sampled token against the trainer's forward pass on the same weights
    k = min(16, len(rows))
    comp = [list(s.token_ids) for s in samples[:k]]
    theirs = [[lp[t].logprob for lp, t in zip(s.logprobs, s.token_ids, strict=True)] for s in samples[:k]]
    with torch.no_grad():
        ours, mask = completion_logprobs(model, rows[:k], comp, PAD)
    gaps = [abs(float(ours[b, t]) - theirs[b][t]) for b in range(k) for t in range(len(comp[b]))
            if mask[b, t] > 0]
    mean_gap = sum(gaps) / max(1, len(gaps))
    del llm
    torch.cuda.empty_cache()
    return {"check": "vllm", "batch": len(rows), "new_tokens": tokens, "engine_load_s": round(load_s, 1),
            "seconds": round(secs, 3), "tokens_per_s": round(tokens / secs, 1), "logprob_tokens": len(gaps),
            "logprob_mean_abs_diff": round(mean_gap, 5), "logprob_max_abs_diff": round(max(gaps, default=0.0), 4),
            "agree": mean_gap < tol}


def rl_step(model, rows: list[list[int]], completions: list, lora: bool, grad_accum: int, device: str,
            precision: str) -> dict:
    import torch

    from coderl.rl.config import RLConfig
    from coderl.rl.loop import Rollout, update
    from coderl.tasks.problem import Problem

    if lora and importlib.util.find_spec("peft") is None:
        return {"check": "rl_step", "lora": True, "skipped": "peft is not installed"}
    policy = copy.deepcopy(model).float().train()
    if lora:
        from coderl.models.lora import apply_lora

        policy = apply_lora(policy, r=16, alpha=32, dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj",
                                                                                  "o_proj"])
    problem = Problem(task_id="gpu-check", prompt="", tests={"type": "assert", "asserts": []})
    rollouts = [Rollout(problem=problem, prompt_ids=p, completion_ids=ids, text="", finished=done)
                for p, (ids, done) in zip(rows, completions, strict=True)]
    adv = torch.tensor([1.0 if i % 2 else -1.0 for i in range(len(rollouts))], device=device)
    cfg = RLConfig(algo="grpo", samples_per_problem=2, sft_weight=0.0, precision=precision, grad_accum=grad_accum,
                   max_new_tokens=max(len(ids) for ids, _ in completions))
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-6)
    tok = SimpleNamespace(pad_token_id=PAD, eos_token_id=EOS)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    sync(device)
    t0 = time.perf_counter()
    update(policy, opt, tok, rollouts, adv, None, [], cfg, random.Random(0))
    sync(device)
    secs = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    del policy, opt
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return {"check": "rl_step", "lora": lora, "batch": len(rollouts), "grad_accum": grad_accum,
            "tokens": sum(len(p) + len(c) for p, (c, _) in zip(rows, completions, strict=True)),
            "trainable_params": trainable, "seconds": round(secs, 3),
            "peak_gpu_gib": None if peak is None else round(peak, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --tiny)")
    ap.add_argument("--tiny", action="store_true", help="a model of a few hundred thousand parameters")
    ap.add_argument("--batch", type=int, default=None, help="prompts per batch [64; 4 with --tiny]")
    ap.add_argument("--prompt-len", type=int, default=None, help="prompt tokens [256; 16 with --tiny]")
    ap.add_argument("--new", type=int, default=None, help="new tokens per prompt [256; 16 with --tiny]")
    ap.add_argument("--grad-accum", type=int, default=4, help="micro-batches of the RL update")
    ap.add_argument("--logprob-tol", type=float, default=0.02, help="largest mean |vLLM - trainer| log-prob gap")
    args = ap.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        emit({"check": "gpu_check", "skipped": "no CUDA device; run on a GPU machine, or --tiny --device cpu"})
        return 0
    batch = args.batch or (4 if args.tiny else 64)
    plen = args.prompt_len or (16 if args.tiny else 256)
    new = args.new or (16 if args.tiny else 256)
    shape = TINY if args.tiny else QWEN25_CODER_15B
    precision = "bf16" if args.device.startswith("cuda") else "fp32"
    t_start = time.perf_counter()
    model = build(shape, args.device, torch.bfloat16 if precision == "bf16" else torch.float32)
    emit({"check": "model", "shape": "tiny" if args.tiny else "Qwen2.5-Coder-1.5B", "device": args.device,
          "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
          "params": sum(p.numel() for p in model.parameters()), "torch": torch.__version__})
    rows = prompts(shape["vocab_size"], batch, plen)
    completions = None
    for backend in ("loop", "hf"):
        rec, out = time_generate(model, rows, new, backend, args.device)
        emit(rec)
        completions = completions or out
    vrec = vllm_check(model, rows, new, args.logprob_tol, args.device)
    emit(vrec)
    for lora in (False, True):
        emit(rl_step(model, rows, completions, lora, args.grad_accum, args.device, precision))
    emit({"check": "done", "seconds": round(time.perf_counter() - t_start, 1)})
    return 1 if vrec.get("agree") is False else 0


if __name__ == "__main__":
    sys.exit(main())
