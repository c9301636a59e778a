"""Evaluation: score samples files with the sandboxed executor (``coderl eval``).

No torch or transformers here: scoring a samples file must work on a machine without a model stack.
"""

from coderl.eval.evaluate import EvalConfig, Verdict, evaluate, run_samples, summarize
from coderl.eval.passk import bootstrap_ci, n_at_k, pass_at_k, pass_at_k_per_problem
from coderl.eval.samples import Sample, read_samples

__all__ = ["EvalConfig", "Sample", "Verdict", "bootstrap_ci", "evaluate", "n_at_k", "pass_at_k",
           "pass_at_k_per_problem", "read_samples", "run_samples", "summarize"]
