"""Generation throughput (generated tokens per second) of the two backends of ``coderl.models.generate``.

For the demo's tiny GPT-2 (~0.5M parameters, 512-token BPE trained on the task family) it measures the own
KV-cache loop (``backend="loop"``) and Hugging Face ``model.generate`` (``backend="hf"``) at several batch sizes,
in two situations:

* ``random``: a freshly initialised model, which (almost) never emits eos, so every row runs the full
  ``max_new_tokens`` -- pure per-step cost;
* ``trained``: the same model after a short SFT run on ``prompt + program + eos`` (a few seconds), so rows stop
  at eos after different lengths, as in RL sampling -- this is where dropping finished rows matters.

It also measures a T5-style tiny seq2seq (which always uses ``generate``). Sampling is at temperature 1,
top-p 1, one sample per prompt, each batch holding ``batch size`` distinct prompts. Each figure is the best of
``--repeats`` timed runs after one warm-up run.

    .venv/bin/python benchmarks/generation_speed.py [--batch-sizes 16 64 256] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import platform
import random
import time

import torch

from coderl.models.actor import count_parameters, tiny_gpt2
from coderl.models.generate import SamplingConfig, generate
from coderl.models.logprobs import completion_logprobs
from coderl.models.tokenizer import train_bpe
from coderl.tasks.family import corpus_text, generate_tasks


def brief_sft(model, tok, tasks, steps: int, batch: int = 32, lr: float = 3e-3, seed: int = 0) -> float:
    """Train ``model`` on ``prompt + "\\n"`` -> ``program + eos`` for ``steps`` steps; returns the last loss."""
    rng = random.Random(seed)
    data = [(tok(t.prompt + "\n")["input_ids"], tok(t.solutions[0])["input_ids"] + [tok.eos_token_id]) for t in tasks]
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = torch.tensor(0.0)
    for _ in range(steps):
        b = rng.sample(data, batch)
        logp, mask = completion_logprobs(model, [p for p, _ in b], [c for _, c in b], tok.pad_token_id)
        loss = -(logp * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return loss.item()


def tiny_t5(tok, d_model: int = 96, layers: int = 2):
    from transformers import T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=len(tok), d_model=d_model, d_kv=d_model // 4, d_ff=4 * d_model, num_layers=layers,
                   num_decoder_layers=layers, num_heads=4, dropout_rate=0.0, pad_token_id=tok.pad_token_id,
                   eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    return T5ForConditionalGeneration(cfg)


def tokens_per_s(model, tok, prompts: list[str], cfg: SamplingConfig, backend: str,
                 repeats: int) -> tuple[float, float]:
    """(tokens/s, mean completion length) for one batch of ``prompts``; best of ``repeats`` after a warm-up."""
    generate(model, tok, prompts, 1, cfg, batch_size=len(prompts), backend=backend)
    best, mean_len = 0.0, 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = generate(model, tok, prompts, 1, cfg, batch_size=len(prompts), backend=backend)
        dt = time.perf_counter() - t0
        n_tok = sum(len(c[0].token_ids) for c in out)
        if n_tok / dt > best:
            best, mean_len = n_tok / dt, n_tok / len(prompts)
    return best, mean_len


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    train = generate_tasks("train", 2000, seed=0)
    tok = train_bpe(corpus_text(train), 512)
    model = tiny_gpt2(tok)
    prompts_all = [t.prompt + "\n" for t in train]
    cfg = SamplingConfig(max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, seed=0)
    cpu = platform.processor() or platform.machine()
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu}")
    print(f"# tiny GPT-2: {count_parameters(model):,} parameters, vocab {len(tok)}; "
          f"max_new_tokens {cfg.max_new_tokens}")

    rows = []
    for situation in ("random", "trained"):
        if situation == "trained":
            t0 = time.perf_counter()
            loss = brief_sft(model, tok, train, args.train_steps)
            print(f"# brief SFT: {args.train_steps} steps in {time.perf_counter() - t0:.1f}s, final loss {loss:.3f}")
        for bs in args.batch_sizes:
            prompts = prompts_all[:bs]
            for backend in ("loop", "hf"):
                tps, mlen = tokens_per_s(model, tok, prompts, cfg, backend, args.repeats)
                rows.append(("gpt2-tiny", situation, backend, bs, tps, mlen))
    t5 = tiny_t5(tok)
    t5.eval()
    for bs in args.batch_sizes:
        tps, mlen = tokens_per_s(t5, tok, prompts_all[:bs], cfg, "hf", args.repeats)
        rows.append((f"t5-tiny ({count_parameters(t5) / 1e6:.2f}M)", "random", "hf", bs, tps, mlen))

    print()
    print("| model | situation | backend | batch | tokens/s | mean completion tokens |")
    print("|---|---|---|---:|---:|---:|")
    for name, sit, be, bs, tps, mlen in rows:
        print(f"| {name} | {sit} | {be} | {bs} | {tps:,.0f} | {mlen:.1f} |")


if __name__ == "__main__":
    main()
