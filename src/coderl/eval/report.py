"""Evaluation reports: ``summary.json`` (everything), ``summary.md`` (for humans and PRs) and
``outcomes.png`` (the outcome mix as a bar chart). matplotlib is imported only when the chart is drawn,
with the non-interactive Agg backend, so evaluating never needs a display or pays matplotlib's import cost
unless a chart is asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coderl.sandbox.schema import OUTCOMES

OUTCOME_COLORS = {"passed": "#2e7d32", "failed_test": "#f9a825", "runtime_error": "#c62828",
                  "compile_error": "#6a1b9a"}


def fmt_value(entry: dict[str, Any], digits: int = 4) -> str:
    """"0.6234 [0.5512, 0.6921]" or the reason a value is missing."""
    if entry.get("value") is None:
        return "n/a"
    s = f"{entry['value']:.{digits}f}"
    if entry.get("ci"):
        lo, hi = entry["ci"]
        s += f" [{lo:.{digits}f}, {hi:.{digits}f}]"
    return s


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    """The Markdown summary: headline pass@k, coverage notes, outcome mix, per-difficulty table and n@k."""
    conf = int(round(100 * meta.get("confidence", 0.95)))
    out = [f"# Evaluation: {meta.get('dataset', '')}", ""]
    out.append(f"Samples `{meta.get('samples', '')}`: {summary['samples']} samples for "
               f"{summary['problems_evaluated']} of {summary['problems']} problems "
               f"({summary['samples_per_problem']['min']}-{summary['samples_per_problem']['max']} per problem); "
               f"checker `{meta.get('checker', 'default')}`, timeout {meta.get('timeout', '')} s per test; "
               f"{meta.get('wall_seconds', 0):.1f} s wall.")
    if summary["problems_without_samples"]:
        out.append("")
        out.append(f"**{summary['problems_without_samples']} problems have no samples** and are not scored "
                   f"(first: {', '.join(summary['problems_without_samples_ids'][:5])}).")
    out += ["", f"## pass@k (unbiased estimator, {conf}% bootstrap interval over problems)", ""]
    out.append(_md_table(["k", "pass@k", "problems", "note"],
                         [[str(e["k"]), fmt_value(e), f"{e['problems']}/{e['problems_total']}", e.get("note", "")]
                          for e in summary["pass_at_k"]]))
    out += ["", "## Outcomes", ""]
    out.append(_md_table(["outcome", "samples", "fraction"],
                         [[o, str(summary["outcomes"][o]["count"]), f"{summary['outcomes'][o]['fraction']:.4f}"]
                          for o in OUTCOMES]))
    if summary.get("details"):
        out += ["", "Most frequent failure details: " +
                ", ".join(f"`{k}` {v}" for k, v in list(summary["details"].items())[:8]) + "."]
    if summary.get("by_difficulty"):
        ks = [e["k"] for e in summary["pass_at_k"]]
        out += ["", "## By difficulty", ""]
        rows = []
        for r in summary["by_difficulty"]:
            rows.append([r["difficulty"], str(r["problems"]), str(r["samples"])]
                        + [fmt_value(e) for e in r["pass_at_k"]]
                        + [f"{r['outcomes'][o]['fraction']:.3f}" for o in OUTCOMES])
        out.append(_md_table(["difficulty", "problems", "samples"] + [f"pass@{k}" for k in ks] + list(OUTCOMES),
                             rows))
    if summary.get("examples"):
        ex = summary["examples"]
        out += ["", "## n@k (filter on the statement's example tests, then submit n)", ""]
        out.append(f"{ex['problems_with_examples']} problems have example tests; "
                   f"{ex['samples_passing_examples']} of {ex['samples_checked']} of their samples pass them; "
                   f"of those, {ex['hidden_pass_rate_given_examples_pass']} also pass the hidden tests.")
        out.append("")
        out.append(_md_table(["n@k", "value", "problems", "note"],
                             [[f"{e['n']}@{e['k']}", fmt_value(e), str(e["problems"]), e.get("note", "")]
                              for e in summary["n_at_k"]]))
        if summary.get("n_at_k_note"):
            out += ["", summary["n_at_k_note"] + "."]
    return "\n".join(out) + "\n"


def plot_outcomes(summary: dict[str, Any], path: str | Path, title: str = "") -> None:
    """Bar chart of the outcome mix: overall, and per difficulty when the dataset has difficulties."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("all", summary["outcomes"])]
    groups += [(r["difficulty"], r["outcomes"]) for r in summary.get("by_difficulty", [])]
    fig, ax = plt.subplots(figsize=(max(5.0, 2.0 + 1.6 * len(groups)), 4.0))
    width = 0.8 / len(OUTCOMES)
    for j, outcome in enumerate(OUTCOMES):
        xs = [i + (j - (len(OUTCOMES) - 1) / 2) * width for i in range(len(groups))]
        ys = [g[1][outcome]["fraction"] for g in groups]
        bars = ax.bar(xs, ys, width, label=outcome, color=OUTCOME_COLORS[outcome])
        for b, g in zip(bars, groups, strict=True):
            ax.annotate(str(g[1][outcome]["count"]), (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(groups)), [g[0] for g in groups])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("fraction of samples (count on each bar)")
    ax.set_title(title or "Outcome mix")
    ax.legend(fontsize=8, ncol=len(OUTCOMES), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(out_dir: str | Path, summary: dict[str, Any], meta: dict[str, Any], chart: bool = True) -> list[str]:
    """Write summary.json, summary.md and (unless ``chart`` is False) outcomes.png into ``out_dir``.

    Returns the names written. Without matplotlib (it comes with the ``train`` extra) the chart is skipped
    rather than failing an evaluation whose numbers are already computed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps({"meta": meta, **summary}, indent=2) + "\n", encoding="utf-8")
    (out_dir / "summary.md").write_text(markdown(summary, meta), encoding="utf-8")
    written = ["summary.json", "summary.md"]
    if chart:
        try:
            plot_outcomes(summary, out_dir / "outcomes.png", f"Outcome mix: {meta.get('dataset', '')}")
            written.append("outcomes.png")
        except ImportError:
            pass
    return written
