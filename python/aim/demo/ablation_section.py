"""The ablation's numbers (``benchmarks/ablation.py``): success per variant and training seed, and
aim's paired differences against each other variant with 95% intervals, as Markdown (for
benchmarks/RESULTS.md) and as an HTML section of the demo report.

The ablation writes one row per (suite, variant, training seed, task) with its successes and
episodes. A variant's success with one seed is the mean of its tasks' rates. Variants are
compared seed by seed (each seed trains every variant on the same data and evaluates them on the
same held-out episodes), so the unit of the interval is the training seed: the mean of the
per-seed differences with Student's t interval over the seeds, which holds the seed-to-seed spread
that one seed's 30-episode interval leaves out.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

BASELINE = "aim"


@dataclass(frozen=True)
class PairedDifference:
    """aim minus ``variant`` on ``suite``: ``per_seed`` {seed: points}, their mean and 95% interval
    (None with fewer than two seeds)."""

    suite: str
    variant: str
    per_seed: dict[int, float]
    mean: float
    interval: tuple[float, float] | None


def load_rows(path: str | Path) -> list[dict]:
    """The rows of an ablation document (``benchmarks/results/ablation.json``)."""
    return json.loads(Path(path).read_text())["rows"]


def success_by_seed(rows: list[dict]) -> dict[tuple[str, str], dict[int, float]]:
    """(suite, variant) -> {seed: mean success rate over the suite's tasks, in points}."""
    tasks: dict[tuple[str, str, int], list[float]] = {}
    for row in rows:
        tasks.setdefault((row["suite"], row["variant"], int(row["seed"])), []).append(
            row["successes"] / row["episodes"])
    out: dict[tuple[str, str], dict[int, float]] = {}
    for (suite, variant, seed), rates in sorted(tasks.items()):
        out.setdefault((suite, variant), {})[seed] = 100 * sum(rates) / len(rates)
    return out


def paired_differences(rows: list[dict]) -> list[PairedDifference]:
    """aim minus every other variant, per suite, over the seeds both have."""
    success = success_by_seed(rows)
    out = []
    for (suite, variant), seeds in success.items():
        base = success.get((suite, BASELINE))
        if variant == BASELINE or base is None:
            continue
        per_seed = {s: base[s] - seeds[s] for s in sorted(set(base) & set(seeds))}
        if not per_seed:
            continue
        values = list(per_seed.values())
        mean = sum(values) / len(values)
        interval = None
        if len(values) > 1:
            sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
            half = student_t_quantile(0.975, len(values) - 1) * sd / math.sqrt(len(values))
            interval = (mean - half, mean + half)
        out.append(PairedDifference(suite, variant, per_seed, mean, interval))
    return out


def student_t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile (p in (0.5, 1)) of Student's t with ``dof`` degrees of freedom: the CDF
    by Simpson's rule on the density, inverted by bisection (to ~1e-9; no SciPy needed)."""
    if not 0.5 < p < 1 or dof < 1:
        raise ValueError(f"student_t_quantile: need 0.5 < p < 1 and dof >= 1, got p={p}, dof={dof}")
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)

    def density(t: float) -> float:
        return math.exp(log_norm - (dof + 1) / 2 * math.log1p(t * t / dof))

    def cdf(x: float, pieces: int = 4000) -> float:
        h = x / pieces
        inner = sum((4 if i % 2 else 2) * density(i * h) for i in range(1, pieces))
        return 0.5 + h / 3 * (density(0.0) + inner + density(x))

    low, high = 0.0, 1.0
    while cdf(high) < p:
        low, high = high, 2 * high
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if cdf(middle) < p else (low, middle)
    return (low + high) / 2


def markdown_tables(rows: list[dict]) -> str:
    """Success per variant and seed, then the paired differences, as two Markdown tables."""
    success = success_by_seed(rows)
    seeds = sorted({s for per in success.values() for s in per})
    lines = ["| suite | variant | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
             "|---|---|" + "---:|" * (len(seeds) + 1)]
    for (suite, variant), per in success.items():
        cells = [f"{per[s]:.0f}%" if s in per else "-" for s in seeds]
        lines.append(f"| {suite} | {variant} | {' | '.join(cells)} | {sum(per.values()) / len(per):.1f}% |")
    lines += ["", "| suite | aim minus | seeds | per seed (points) | mean (points) | 95% interval |",
              "|---|---|---:|---|---:|---:|"]
    for d in paired_differences(rows):
        per = ", ".join(f"{v:+.0f}" for v in d.per_seed.values())
        lines.append(f"| {d.suite} | {d.variant} | {len(d.per_seed)} | {per} | {d.mean:+.1f} | {_interval(d)} |")
    return "\n".join(lines)


def html_section(path: str | Path) -> str:
    """The demo report's ablation section from the ablation document at ``path``; empty when the
    ablation has not been run."""
    path = Path(path)
    if not path.is_file():
        return ""
    rows = load_rows(path)
    success = success_by_seed(rows)
    seeds = sorted({s for per in success.values() for s in per})
    head = "".join(f"<th>seed {s}</th>" for s in seeds)
    body = "".join(
        f"<tr><td>{html.escape(suite)}</td><td>{html.escape(variant)}</td>"
        + "".join(f"<td>{per[s]:.0f}%</td>" if s in per else "<td>-</td>" for s in seeds)
        + f"<td><b>{sum(per.values()) / len(per):.1f}%</b></td></tr>" for (suite, variant), per in success.items())
    pairs = "".join(
        f"<tr><td>{html.escape(d.suite)}</td><td>{html.escape(d.variant)}</td><td>{len(d.per_seed)}</td>"
        f"<td>{', '.join(f'{v:+.0f}' for v in d.per_seed.values())}</td><td>{d.mean:+.1f}</td>"
        f"<td>{_interval(d)}</td></tr>" for d in paired_differences(rows))
    return (
        "<h2>Ablation over training seeds</h2>"
        f"<p>From <code>{html.escape(str(path))}</code> (<code>benchmarks/ablation.py</code>): every variant trained "
        "with each seed on the same data and evaluated on the same held-out episodes. Mean success over the "
        "suite's tasks per seed, then aim minus each variant, seed by seed, with a 95% Student-t interval over "
        "the seeds.</p>"
        f"<table><tr><th>suite</th><th>variant</th>{head}<th>mean</th></tr>{body}</table>"
        "<table><tr><th>suite</th><th>aim minus</th><th>seeds</th><th>per seed (points)</th><th>mean (points)</th>"
        f"<th>95% interval</th></tr>{pairs}</table>"
    )


def _interval(d: PairedDifference) -> str:
    return "-" if d.interval is None else f"[{d.interval[0]:+.1f}, {d.interval[1]:+.1f}]"
