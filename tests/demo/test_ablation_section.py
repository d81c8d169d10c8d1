"""The ablation's tables: per-seed success, aim's paired differences with Student-t intervals
(against SciPy's), and the demo report's section (absent until the ablation has run)."""

import json

import numpy as np
import pytest

from aim.demo.ablation_section import html_section, markdown_tables, paired_differences, student_t_quantile

TASKS = ("a", "b", "c")


def _rows(rng, variants=("aim", "no-value-map", "aim+rl"), seeds=(0, 1, 2, 3, 4), episodes=30):
    return [{"suite": suite, "variant": v, "seed": s, "task": t, "successes": int(rng.integers(0, episodes + 1)),
             "episodes": episodes} for suite in ("demo", "intent") for v in variants for s in seeds for t in TASKS]


@pytest.mark.parametrize("dof", [1, 2, 4, 9, 29])
def test_t_quantile_matches_scipy(dof):
    stats = pytest.importorskip("scipy.stats")
    p = float(np.random.default_rng().uniform(0.6, 0.995))
    assert student_t_quantile(p, dof) == pytest.approx(stats.t.ppf(p, dof), rel=1e-7)
    with pytest.raises(ValueError, match="0.5 < p < 1"):
        student_t_quantile(0.2, dof)


def test_paired_differences_are_per_seed_means_of_task_rates_with_t_intervals():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng()
    rows = _rows(rng)
    rows = [r for r in rows if not (r["variant"] == "aim+rl" and r["seed"] == 4)]  # a seed still running
    differences = {(d.suite, d.variant): d for d in paired_differences(rows)}
    assert set(differences) == {(s, v) for s in ("demo", "intent") for v in ("no-value-map", "aim+rl")}
    for (suite, variant), d in differences.items():
        def rate(v, s):
            mine = [r["successes"] / r["episodes"] for r in rows if (r["suite"], r["variant"], r["seed"]) == (suite, v, s)]
            return 100 * np.mean(mine)
        seeds = [0, 1, 2, 3] if variant == "aim+rl" else [0, 1, 2, 3, 4]
        expected = np.array([rate("aim", s) - rate(variant, s) for s in seeds])
        assert list(d.per_seed) == seeds
        np.testing.assert_allclose(list(d.per_seed.values()), expected)
        low, high = stats.t.interval(0.95, len(seeds) - 1, loc=expected.mean(), scale=stats.sem(expected))
        assert d.mean == pytest.approx(expected.mean()) and d.interval == pytest.approx((low, high))
    table = markdown_tables(rows)
    assert "| intent | aim+rl | 4 |" in table and "| demo | no-value-map | 5 |" in table


def test_one_seed_gives_no_interval():
    (d,) = [d for d in paired_differences(_rows(np.random.default_rng(), seeds=(3,))) if d.suite == "demo"
            and d.variant == "no-value-map"]
    assert d.interval is None and "| - |" in markdown_tables(_rows(np.random.default_rng(), seeds=(3,)))


def test_the_report_section_appears_once_the_ablation_has_run(tmp_path):
    path = tmp_path / "ablation" / "ablation.json"
    assert html_section(path) == ""
    path.parent.mkdir()
    path.write_text(json.dumps({"rows": _rows(np.random.default_rng())}))
    section = html_section(path)
    assert "<h2>Ablation over training seeds</h2>" in section and section.count("<tr>") == 2 + 6 + 4
