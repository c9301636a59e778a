"""Gradient accumulation gives the update of the whole batch (RL update phase and SFT), on CPU in fp32 and bf16."""

from __future__ import annotations

import copy
import importlib.util
import random

import pytest

if importlib.util.find_spec("torch") is None:
    pytest.skip("needs the train extra", allow_module_level=True)


def _rollouts(n: int = 6):
    from coderl.rl.loop import Rollout
    from coderl.tasks.problem import Problem

    p = Problem(task_id="t", prompt="x", tests={"type": "assert", "asserts": ["assert True"]})
    rng = random.Random(0)
    return [Rollout(p, [rng.randrange(3, 290) for _ in range(rng.randint(2, 6))],
                    [rng.randrange(3, 290) for _ in range(rng.randint(1, 9))], "") for _ in range(n)]


@pytest.mark.parametrize("normalize", ["sequence", "token"])
def test_rl_update_same_with_micro_batches(tiny, normalize):
    import torch

    from coderl.rl.config import RLConfig
    from coderl.rl.loop import update

    model, tok = tiny
    rollouts = _rollouts()
    adv = torch.tensor([1.0, -0.5, 0.0, 0.7, -1.3, 0.2])  # one zero: skipped, as in the loop
    weights = torch.rand((6, 9))
    sft = [([5, 6, 7], [8, 9, 10, 11]), ([12], [13, 14]), ([15, 16], [17, 18, 19, 20, 21])]
    after = []
    for accum in (1, 3):
        m = copy.deepcopy(model)
        cfg = RLConfig(sft_batch=5, grad_accum=accum, normalize=normalize, grad_clip=1e9)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        stats = update(m, opt, tok, rollouts, adv, weights, sft, cfg, random.Random(1))
        pg, s = stats["loss_pg"], stats["loss_sft"]
        after.append((m, pg, s))
    (a, pg1, s1), (b, pg3, s3) = after
    assert pg1 == pytest.approx(pg3, rel=1e-5) and s1 == pytest.approx(s3, rel=1e-5)
    moved = [(pa - p0).abs().max().item() for pa, p0 in zip(a.parameters(), model.parameters(), strict=True)]
    assert max(moved) > 1e-4
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6)


def test_sft_same_with_micro_batches_and_bf16_runs(tiny):
    import torch

    from coderl.train.sft import SFTConfig, train_sft

    model, tok = tiny
    pairs = [(f"# add {i}\n", f"def f(x):\n    return x + {i}\n") for i in range(8)]
    out = []
    for accum, precision in ((1, "fp32"), (4, "fp32"), (2, "bf16")):
        m = copy.deepcopy(model)
        cfg = SFTConfig(lr=0.1, batch_size=8, epochs=1.0, warmup_steps=0, grad_accum=accum, precision=precision,
                        grad_clip=1e9)
        res = train_sft(m, tok, pairs, cfg, optimizer=torch.optim.SGD(m.parameters(), lr=0.1), progress=False)
        out.append((m, res["loss"][0]))
    (a, la), (b, lb), (c, lc) = out
    assert la == pytest.approx(lb, rel=1e-5)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6)
    assert lc == pytest.approx(la, rel=0.05)  # bf16 autocast: same loss up to bf16 rounding
    assert any(not torch.equal(pc, p0) for pc, p0 in zip(c.parameters(), model.parameters(), strict=True))
