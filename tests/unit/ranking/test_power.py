"""The minimum detectable gain: t quantiles against tables and scipy, pooled SDs and MDEs by hand."""

from __future__ import annotations

import math

import pytest
import scipy.stats

from data.payloads import FinetuneRun
from data.records import Score
from ranking.power import DESIGN_SEEDS, minimum_detectable_gain, pooled_sd, study_power
from ranking.stats import t_quantile

BASE, HASH = "org/base", "h1"


@pytest.mark.parametrize(("df", "p", "table"), [(4, 0.80, 0.9410), (16, 0.80, 0.8647), (19, 0.80, 0.8610),
                                                (16, 0.975, 2.1199), (1, 0.975, 12.7062), (40, 0.975, 2.0211)])
def test_t_quantiles_match_the_tables(df, p, table):
    assert t_quantile(df, p) == pytest.approx(table, abs=1e-4)
    assert t_quantile(df, p) == pytest.approx(scipy.stats.t.ppf(p, df), abs=1e-6)


def test_the_default_quantile_is_the_two_sided_95_one_and_bad_arguments_raise():
    assert t_quantile(7) == t_quantile(7, 0.975) and t_quantile(7, 0.5) == pytest.approx(0.0, abs=1e-12)
    for df, p in ((0.5, 0.8), (3, 0.4), (3, 1.0)):
        with pytest.raises(ValueError):
            t_quantile(df, p)


def test_pooled_sd_by_hand():
    pooled = pooled_sd([[1.0, 2.0, 3.0], [10.0, 14.0], [7.0], []])  # SS 2 + 8 over df 2 + 1
    assert (pooled.df, pooled.n_groups, pooled.n_values) == (3, 3, 6)
    assert pooled.sd == pytest.approx(math.sqrt(10 / 3))
    assert math.isnan(pooled_sd([[1.0], [2.0]]).sd)


def test_minimum_detectable_gain_by_hand():
    # 4 targets x 5 seeds, σ_d = 2 points: df 16, SE = 2·√(4/5)/4
    m = minimum_detectable_gain(2.0, [5, 5, 5, 5])
    assert m.df == 16 and m.mde == pytest.approx((2.1199 + 0.8647) * 2 * math.sqrt(4 / 5) / 4, abs=1e-4)
    assert m.mde == pytest.approx(1.3348, abs=1e-4)
    # one target x 5 seeds: df 4
    assert minimum_detectable_gain(1.0, [5]).mde == pytest.approx((2.7764 + 0.9410) / math.sqrt(5), abs=1e-4)
    # uneven seeds: df = Σ (n_t − 1) = 19, SE = σ·√(Σ 1/n_t)/T
    uneven = minimum_detectable_gain(3.0, [5, 5, 5, 5, 4])
    se = 3.0 * math.sqrt(4 / 5 + 1 / 4) / 5
    assert uneven.df == 19 and uneven.mde == pytest.approx((2.0930 + 0.8610) * se, abs=1e-4)
    assert uneven.mde == pytest.approx((scipy.stats.t.ppf(0.975, 19) + scipy.stats.t.ppf(0.80, 19)) * se, rel=1e-6)
    # no interval below 2 df, so no MDE
    assert math.isnan(minimum_detectable_gain(2.0, [2]).mde) and minimum_detectable_gain(2.0, [2, 2]).df == 2
    assert math.isnan(minimum_detectable_gain(math.nan, [5, 5]).mde)


def run(repo: str, target: str, seed: int, value: float, *, lr: float = 3e-4, status: str = "ok") -> Score:
    return Score(repo_id=repo, revision="r", scorer="intertraining", metric="target_score", value=value, target=target,
                 seed=seed, config_hash=HASH, base_id=BASE, status=status, extra=FinetuneRun(lr=lr).to_json())


def test_the_design_and_the_measured_power_of_hand_built_runs():
    base = [run(BASE, "sst2", s, v) for s, v in enumerate((0.80, 0.82, 0.84))]  # SD 2 points
    base += [run(BASE, "trec", s, v) for s, v in enumerate((0.90, 0.91, 0.92))]  # SD 1 point
    base += [run(BASE, "sst2", 9, 0.10, lr=1e-4), run(BASE, "trec", 9, 0.10, status="failed")]  # left out
    cand = [run("o/c", "sst2", 0, 0.83), run("o/c", "sst2", 1, 0.83), run("o/c", "sst2", 2, 0.87),  # +3, +1, +3
            run("o/c", "trec", 0, 0.92), run("o/c", "trec", 1, 0.91)]  # +2, 0; seed 2 missing
    power = study_power([*base, *cand], BASE, HASH, {"sst2": 3e-4, "trec": 3e-4})
    assert power.targets == ("sst2", "trec")
    assert (power.base_sd.df, power.base_sd.n_values) == (4, 6)
    assert power.base_sd.sd == pytest.approx(math.sqrt((8 + 2) / 4))  # SS 8 + 2 (points²) over 4 df
    assert [m.seeds for m in power.design] == [(n, n) for n in DESIGN_SEEDS]
    five = power.reference
    sigma_d = math.sqrt(2) * math.sqrt(10 / 4)
    assert five.seeds == (5, 5) and five.df == 8 and five.mde == pytest.approx(
        (scipy.stats.t.ppf(0.975, 8) + scipy.stats.t.ppf(0.80, 8)) * sigma_d * math.sqrt(2 / 5) / 2, rel=1e-6)
    # paired differences (points): sst2 (+3, +1, +3), trec (+2, 0): SS 8/3 + 2 over 3 df
    assert power.paired_sd.df == 3 and power.paired_sd.sd == pytest.approx(math.sqrt((8 / 3 + 2) / 3))
    assert power.measured.seeds == (2, 2) and power.measured.df == 2  # the typical cell: the lower median
    assert study_power(base, BASE, HASH, {}) is None
    no_pairs = study_power(base, BASE, HASH, {"sst2": 3e-4})
    assert no_pairs.paired_sd is None and no_pairs.measured is None and no_pairs.base_sd.df == 2


def test_the_seed_effect_test_by_hand_and_against_scipys_f():
    """One candidate, 2 targets × 3 slots of paired differences (points): sst2 +1, +3, +5 and trec +2, +4, +3
    (base at 0.5). Slot means 1.5, 3.5, 4.0 around 3.0: seed SS 2·(2.25 + 0.25 + 1) = 7 on 2 df; residual SS 3 on
    2 df (cells minus row and column effects); F = 3.5/1.5. A rerun at slot + 1000 fills its slot."""
    from ranking.power import seed_effect

    base = [run(BASE, t, s, 0.5) for t in ("sst2", "trec") for s in (0, 1, 2)] + [run(BASE, "trec", 1001, 0.5)]
    cand = [run("o/c", "sst2", s, 0.5 + g / 100) for s, g in ((0, 1), (1, 3), (2, 5))]
    cand += [run("o/c", "trec", 0, 0.52), run("o/c", "trec", 1, 0.40, status="failed"),
             run("o/c", "trec", 1001, 0.54), run("o/c", "trec", 2, 0.53)]
    e = seed_effect(base + cand, BASE, HASH)
    assert (e.df_seed, e.df_residual, e.n_candidates) == (2, 2, 1)
    assert e.f == pytest.approx(3.5 / 1.5)
    assert e.p == pytest.approx(scipy.stats.f.sf(3.5 / 1.5, 2, 2), abs=1e-9)
    assert seed_effect(base, BASE, HASH) is None  # no candidate


def test_the_seed_effect_test_holds_its_level_and_finds_a_shared_seed_effect():
    """Simulated studies of 10 candidates × 4 targets × 5 seeds (seed SD 2 points): with independent noise it
    rejects at 5% about 5% of the time; with a seed effect shared across targets (correlation 0.5) almost always."""
    import numpy as np

    from ranking.power import seed_effect

    rng = np.random.default_rng(0)

    def rejects(rho: float) -> bool:
        scores = [run(BASE, t, s, 0.5) for t in "abcd" for s in range(5)]
        for c in range(10):
            shared = rng.normal(0, 2 * rho**0.5, 5)
            noise = rng.normal(0, 2 * (1 - rho) ** 0.5, (4, 5))
            scores += [run(f"o/c{c}", t, s, 0.5 + (shared[s] + noise[i, s]) / 100)
                       for i, t in enumerate("abcd") for s in range(5)]
        return seed_effect(scores, BASE, HASH).p < 0.05

    assert 0.02 <= np.mean([rejects(0.0) for _ in range(150)]) <= 0.09
    assert np.mean([rejects(0.5) for _ in range(40)]) >= 0.9
