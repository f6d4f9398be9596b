"""Known answers of the offline study's report: planted gains, effects, shifts and savings read back."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats  # pinned in requirements-dev.txt: a missing scipy is an error, never a skip

from data.payloads import FinetuneRun
from data.records import Candidate, CandidateStatus, Kind, Match, Score
from ranking.power import minimum_detectable_gain, pooled_sd
from ranking.study_markdown import NOT_MEASURED, NOT_RECORDED, render_markdown
from ranking.study_report import (
    StudyMeta,
    fit_additive,
    read_meta,
    source_labels,
    source_table,
    study_rows,
)
from tests.helpers.boards import load_leaderboard, report_of
from tests.helpers.study_store import (
    BASE,
    BASE_SCORES,
    SEED_NOISE,
    SEED_OFFSETS,
    build_study_store,
    protocol,
    repo_of,
    sha,
    target_scores,
)

TARGETS = sorted(BASE_SCORES)  # mrpc, rte, sick, sst2, trec
SOURCES = ["mnli", *TARGETS]  # mnli is a source only; the others are also targets (a diagonal)
A = {s: 0.01 * i - 0.02 for i, s in enumerate(SOURCES)}  # planted source effects (fractions)
B = {t: 0.007 * (j % 3) - 0.004 for j, t in enumerate(TARGETS)}  # planted target effects
ADDITIVE = {s: {t: 0.003 + A[s] + B[t] for t in TARGETS} for s in SOURCES}
CHASH, CJSON = protocol(TARGETS)  # the protocol build_study_store stores its runs under


def centred(effects: dict[str, float]) -> pd.Series:
    series = pd.Series(effects) * 100
    return series - series.mean()


def test_an_additive_matrix_fits_exactly_and_its_shuffles_do_not(tmp_path):
    report = report_of(build_study_store(tmp_path / "s.db", ADDITIVE), BASE)
    fit = report.additive
    assert report.gain_matrix.shape == (6, 5) and list(report.gain_matrix.columns) == TARGETS
    assert report.gain_matrix.loc["sick", "trec"] == pytest.approx(100 * ADDITIVE["sick"]["trec"])
    assert fit.diagonal_excluded and fit.n_diagonal == 5 and fit.n_cells == 6 * 5 - 5
    assert fit.n_params == 1 + 5 + 4
    assert fit.r2 == pytest.approx(1.0, abs=1e-12) and fit.rmse < 1e-9
    assert fit.source_effects.sort_index().to_numpy() == pytest.approx(centred(A).sort_index().to_numpy(), abs=1e-9)
    assert fit.target_effects.sort_index().to_numpy() == pytest.approx(centred(B).sort_index().to_numpy(), abs=1e-9)
    assert fit.mu == pytest.approx(0.3 + 100 * np.mean(list(A.values())) + 100 * np.mean(list(B.values())))
    assert fit.shuffled_rmse > 0.5 and fit.shuffled_r2 < 0.9
    assert fit.p_value == pytest.approx(1 / 1001) and fit.n_permutations == 1000


def test_missing_cells_are_fitted_by_least_squares_on_the_observed_ones(tmp_path):
    gains = {s: dict(row) for s, row in ADDITIVE.items()}
    del gains["mnli"]["rte"], gains["sst2"]["trec"]
    report = report_of(build_study_store(tmp_path / "s.db", gains), BASE)
    assert report.additive.n_cells == 25 - 2 and report.additive.rmse < 1e-9
    assert report.n_ranked == 4  # a candidate missing a target has no mean gain
    mnli = report.sources.set_index("source").loc["mnli"]
    assert math.isnan(mnli["mean"]) and mnli["n_targets"] == 4  # no partial means
    assert "| mnli | study/mini-base-mnli | incomplete | 4 |" in render_markdown(report)


def test_diagonal_cells_are_left_out_unless_asked():
    matrix = pd.DataFrame([[10 + 1.0, 2.0, 3.0], [2.0, 10 + 3.0, 4.0], [3.0, 4.0, 10 + 5.0], [0.0, 1.0, 2.0]],
                          index=["a", "b", "c", "x"], columns=["a", "b", "c"])  # additive but a +10 diagonal
    excluded = fit_additive(matrix, n_permutations=50)
    included = fit_additive(matrix, exclude_diagonal=False, n_permutations=50)
    assert excluded.rmse < 1e-9 and excluded.n_cells == 9 and excluded.n_diagonal == 3
    assert included.n_cells == 12 and included.r2 < 0.9 and not included.diagonal_excluded
    assert fit_additive(matrix.iloc[:2, :2]) is None  # 2 off-diagonal cells, 3 parameters


def test_a_known_source_effect_comes_first_with_the_leaderboards_own_interval(tmp_path):
    pattern = [0.004, -0.006, 0.001, 0.005, -0.002]
    gains = {s: {t: pattern[(i + j) % 5] for j, t in enumerate(TARGETS)} for i, s in enumerate(TARGETS)}
    gains["mnli"] = dict.fromkeys(TARGETS, 0.03)
    store = build_study_store(tmp_path / "s.db", gains)
    report, board = report_of(store, BASE), load_leaderboard(store, BASE).rows.set_index("repo_id")
    first = report.sources.iloc[0]
    assert first["source"] == "mnli" and first["repo_id"] == repo_of("mnli") and first["n_targets"] == 5
    for _, row in report.sources.iterrows():  # one interval: the board's, in points
        on_board = board.loc[row["repo_id"]]
        assert (row["mean"], row["low"], row["high"]) == pytest.approx(
            (100 * on_board["mean_gain"], 100 * on_board["gain_ci_low"], 100 * on_board["gain_ci_high"]))
        assert row["n_seeds"] == on_board["n_seeds"] == 3 and bool(row["beats_base"]) == bool(on_board["beats_base"])
    sick = report.sources.set_index("source").loc["sick"]
    off_diagonal = [100 * gains["sick"][t] for t in TARGETS if t != "sick"]  # the zero-shot estimand
    assert sick["mean"] == pytest.approx(np.mean(off_diagonal)) and sick["n_targets"] == 4
    assert first["low"] < 3.0 < first["high"] and first["high"] - first["low"] < 2  # seed noise ± 0.3 pts
    text = render_markdown(report)
    best = f"**Best source:** mnli, +3.00 pts (95% CI {first['low']:+.2f} to {first['high']:+.2f}; n = 3 seeds"
    assert best.replace("-", "−") in text and "over the other targets (the leaderboard's interval)." in text


def test_the_source_table_is_the_boards_rows_and_says_when_there_is_no_interval():
    rows = pd.DataFrame({"repo_id": ["o/a", "o/b", "o/c"], "source": ["a", "b", "c"],
                         "mean_gain": [0.02, 0.01, np.nan], "gain_ci_low": [0.01, np.nan, np.nan],
                         "gain_ci_high": [0.03, np.nan, np.nan], "n_seeds": [5, 2, 0], "n_targets": [4, 4, 3],
                         "n_seen": [1, 0, 0], "beats_base": [True, False, False], "gain_df": [12.0, 1.0, np.nan]})
    table = source_table(rows, include_seen=False)
    assert list(table["source"]) == ["a", "b", "c"] and list(table["n_targets"]) == [3, 4, 3]
    assert table.iloc[0][["mean", "low", "high", "df"]].tolist() == pytest.approx([2.0, 1.0, 3.0, 12.0])
    assert source_table(rows, include_seen=True)["n_targets"].tolist() == [4, 4, 3]
    without_df = source_table(rows.drop(columns="gain_df"), include_seen=False)
    assert without_df["df"].isna().all()


def test_rows_without_an_interval_print_their_seeds_and_df(tmp_path):
    report = report_of(build_study_store(tmp_path / "s.db", ADDITIVE), BASE)
    sources = report.sources.copy()
    sources.loc[0, ["low", "high"]] = np.nan
    sources.loc[0, ["n_seeds", "df"]] = (2, 1.0)
    source, mean = sources.loc[0, "source"], sources.loc[0, "mean"]
    text = render_markdown(replace(report, sources=sources))
    assert f"**Best source:** {source}, {mean:+.2f} pts (n = 2 seeds, df = 1: no interval)".replace("-", "−") in text
    sources["df"] = np.nan  # a board without gain_df
    text = render_markdown(replace(report, sources=sources))
    assert f"{mean:+.2f} pts (n = 2 seeds: no interval) |".replace("-", "−") in text


def test_beats_base_counts_are_the_boards(tmp_path):
    means = {"anli": 0.03, "boolq": 0.02, "cola": 0.005, "qnli": -0.01, "wnli": -0.02}
    store = build_study_store(tmp_path / "s.db", {s: dict.fromkeys(TARGETS, g) for s, g in means.items()})
    report, rows = report_of(store, BASE), load_leaderboard(store, BASE).rows
    beating = set(rows.loc[rows["beats_base"].eq(True), "repo_id"])
    assert {repo_of("anli"), repo_of("boolq")} <= beating <= {repo_of(s) for s in ("anli", "boolq", "cola")}
    assert (report.n_ranked, report.n_beat_base, report.n_positive) == (5, len(beating), 3)
    assert f"**Beat the base beyond seed noise:** {len(beating)} of 5 candidates" in render_markdown(report)
    assert "mean gain > 0: 3 of 5" in render_markdown(report)


def test_correlations_equal_scipy_on_the_same_pairs(tmp_path):
    gains = {s: {t: 0.01 * ((3 * i + j) % 7) - 0.03 for j, t in enumerate(TARGETS)} for i, s in enumerate(SOURCES)}
    probe = {"mnli": 0.61, "mrpc": 0.55, "rte": 0.50, "sick": 0.58, "sst2": 0.52}  # trec has no probe
    free_energy = {s: 100.0 + 7 * ((5 * i) % 6) for i, s in enumerate(SOURCES)}
    report = report_of(build_study_store(tmp_path / "s.db", gains, probe=probe, free_energy=free_energy), BASE)
    # the leaderboard's zero-shot estimand: a source's own target (its dataset: tag) is left out of its mean
    mean_gain = {s: np.mean([g for t, g in row.items() if t != s]) for s, row in gains.items()}
    pairs = [(probe[s], mean_gain[s]) for s in probe]
    assert report.probe.n == 5
    assert report.probe.rho == pytest.approx(stats.spearmanr(*zip(*pairs, strict=True)).statistic)
    fe = [free_energy[s] for s in SOURCES], [mean_gain[s] for s in SOURCES]
    assert report.free_energy_spearman.rho == pytest.approx(stats.spearmanr(*fe).statistic)
    assert report.free_energy_pearson.rho == pytest.approx(np.corrcoef(*fe)[0, 1])
    assert report.free_energy_pearson.rho == pytest.approx(stats.pearsonr(*fe).statistic)
    for c in (report.probe, report.free_energy_spearman, report.free_energy_pearson):
        assert c.low <= c.rho <= c.high
    [fe_row] = [r for r in report.validity.rows if r.metric == "free_energy"]  # the base has no free energy here
    assert fe_row.spearman.rho == pytest.approx(stats.spearmanr(*fe).statistic)
    assert f"| free energy F | {fe_row.spearman.rho:+.2f} |".replace("-", "−") in render_markdown(report)


def test_guided_minus_standard_is_the_planted_shift(tmp_path):
    noise = [0.004, -0.003, 0.001, -0.002, 0.0]  # sums to 0: the mean difference is exactly the shift
    base_shift = {(t, seed): 0.02 + noise[(j + seed) % 5] for j, t in enumerate(TARGETS) for seed in range(3)}
    # the standard run of seed 0 is the base's seed-0 run + the gain + its own noise (tests/helpers/study_store.py)
    cand_shift = {(t, 0): SEED_OFFSETS[0] + SEED_NOISE[0] + 0.02 + noise[j] for j, t in enumerate(TARGETS)}
    base_runs = {t: BASE_SCORES[t] for t in TARGETS}
    cand = repo_of("sick")
    guided = target_scores(cand, {t: BASE_SCORES[t] + ADDITIVE["sick"][t] for t in TARGETS}, dropout="guided",
                           shift=cand_shift)
    guided += [Score(repo_id=s.repo_id, revision=s.revision, scorer=s.scorer, metric=s.metric, target=s.target,
                     seed=s.seed, value=s.value + SEED_OFFSETS[s.seed], config_hash=s.config_hash,
                     config_json=s.config_json, base_id=BASE)
               for s in target_scores(BASE, base_runs, seeds=(0, 1, 2), dropout="guided", shift=base_shift)]
    with_guided = report_of(build_study_store(tmp_path / "g.db", ADDITIVE, extra_scores=guided), BASE)
    d = with_guided.dropout
    diffs = 100 * np.array(list(base_shift.values()) + [0.02 + noise[j] for j in range(len(TARGETS))])
    assert (d.n_pairs, d.n_models, d.n_targets, d.grouped_by) == (20, 2, 5, "model")
    # grouped by model: the base's 15 pairs and the candidate's 5 are one observation each
    model_means = [diffs[:15].mean(), diffs[15:].mean()]
    assert d.difference.n == 2 and d.difference.mean == pytest.approx(np.mean(model_means))
    assert model_means == pytest.approx([2.0, 2.0])  # each model's noise sums to 0: no spread between models
    assert (d.difference.low, d.difference.high) == pytest.approx((2.0, 2.0))
    assert d.guided_mean - d.standard_mean == pytest.approx(2.0)
    # the ranked protocol stays the standard one: the matrix is the one without guided runs
    plain = report_of(build_study_store(tmp_path / "p.db", ADDITIVE), BASE)
    pd.testing.assert_frame_equal(with_guided.gain_matrix, plain.gain_matrix)
    assert "(dropout standard)" in with_guided.protocol and plain.dropout is None
    assert "**Guided − standard dropout** (paired runs: same model, target and seed): +2.00 pts (95% CI" \
        in render_markdown(with_guided)


def test_labels_saved_are_read_back_with_their_reference_accuracy(tmp_path):
    saved = [Score(repo_id=repo_of("sick"), revision=sha(repo_of("sick")), scorer="sample_efficiency",
                   metric="labels_saved", target="sst2", seed=0, value=412.0, config_hash="se1", base_id=BASE,
                   extra={"reference_accuracy": 0.81, "base_labels": 1000.0, "candidate_labels": 588.0}),
             Score(repo_id=repo_of("rte"), revision=sha(repo_of("rte")), scorer="sample_efficiency",
                   metric="labels_saved", target="sst2", seed=0, value=-2048.0, config_hash="se1", base_id=BASE,
                   extra={"reference_accuracy": 0.81, "base_labels": 1000.0, "candidate_labels": math.inf})]
    report = report_of(build_study_store(tmp_path / "s.db", ADDITIVE, extra_scores=saved), BASE)
    rows = report.label_savings
    assert list(rows["source"]) == ["sick", "rte"] and list(rows["labels_saved"]) == [412.0, -2048.0]
    assert rows.iloc[0]["reference_accuracy"] == 0.81 and rows.iloc[0]["candidate_labels"] == 588.0
    text = render_markdown(report)
    assert "| sick | study/mini-base-sick | sst2 | +412 | 81.00 | 1000 | 588 |" in text
    assert "| rte | study/mini-base-rte | sst2 | −2048 | 81.00 | 1000 | – |" in text


def test_missing_parts_are_none_and_render_as_not_measured(tmp_path):
    report = report_of(build_study_store(tmp_path / "s.db", ADDITIVE), BASE)
    assert report.probe is report.free_energy_spearman is report.dropout is report.label_savings is None
    text = render_markdown(report)
    for line in ("| linear probe (its stage-1 target) | not measured | — | — | 0 | + | — |",
                 "| free energy F | not measured | — | — | 0 | − | primary (named before the run) |",
                 "| weight distance ‖w − w_base‖ | not measured | — | — | 0 | − | — |",
                 "What λ̂ adds over L_n(w*): not measured (fewer than 3 models with both).",
                 "not computed here (the 2023 board was not given to this report).",
                 "not measured (no free-energy estimates; it needs at least 2 models with ≥ 2 replicates each).",
                 "(paired runs: same model, target and seed): not measured.",
                 "Labels saved (sample efficiency):** not measured."):
        assert line in text
    empty = report_of(build_study_store(tmp_path / "e.db", {}), BASE)
    assert empty.gain_matrix.empty and empty.additive is None and empty.n_ranked == 0 and empty.sources.empty
    assert f"**Best source:** {NOT_MEASURED}." in render_markdown(empty)
    nothing = report_of(build_study_store(tmp_path / "n.db", {}), "org/unknown")
    assert nothing.protocol == "none" and NOT_MEASURED in render_markdown(nothing)


def test_untagged_candidates_fall_back_to_their_repo_id(tmp_path):
    report = report_of(build_study_store(tmp_path / "s.db", ADDITIVE, tagged=False), BASE)
    assert report.n_tagged == 0 and repo_of("sick") in report.gain_matrix.index
    assert report.additive.n_diagonal == 0 and report.additive.n_cells == 30


def test_rendering_is_deterministic_and_formats_numbers_one_way(tmp_path):
    texts = [render_markdown(report_of(build_study_store(tmp_path / f"{i}.db", ADDITIVE), BASE)) for i in (1, 2)]
    assert texts[0] == texts[1]
    assert re.search(r"[+−]\d+\.\d\d pts \(95% CI [+−]\d+\.\d\d to [+−]\d+\.\d\d; n = 3 seeds", texts[0])
    assert not re.search(r"(?<![\w/-])-\d", texts[0])  # negative numbers carry a real minus sign
    assert "(+0.60)" in texts[0]  # rte on rte, a diagonal cell, in parentheses
    assert "R² 1.00, RMSE 0.00 pts" in texts[0] and "permutation p = 0.001" in texts[0]


def test_the_additive_fit_and_its_tests_are_reported_only_from_ten_residual_degrees_of_freedom(tmp_path):
    few = {s: {t: ADDITIVE[s][t] for t in TARGETS} for s in ("mnli", "sick", "trec")}  # 13 cells, 7 parameters
    report = report_of(build_study_store(tmp_path / "s.db", few), BASE)
    assert report.additive.residual_df == 6 and report.additive.tukey is not None  # computed, not reported
    text = render_markdown(report)
    assert ("per-target scale model (13 cells, 7 parameters): not tested: 6 residual degrees of freedom (< 10)."
            in text)
    assert "R²" not in text and "Non-additivity" not in text and "Target effects b_t" not in text
    assert "| a_s |" not in text
    # 10 residual df: the additive fit is reported, Tukey's test (9) and the per-target scale (8) are not
    matrix = pd.DataFrame(np.add.outer(np.arange(6.0), [0.0, 1.0, 3.0]) + np.tile([[0.1, -0.1, 0.0]], (6, 1)),
                          index=[f"s{i}" for i in range(6)], columns=["x", "y", "z"])
    fit = fit_additive(matrix, n_permutations=20)
    assert (fit.residual_df, fit.tukey.df2, fit.scale.residual_df) == (10, 9, 8)
    text = render_markdown(replace(report, additive=fit))
    assert "RMSE" in text and "on 10 residual degrees of freedom" in text
    assert "Tukey's one-degree-of-freedom test not tested: 9 residual degrees of freedom (< 10)" in text
    assert "(18 cells, 10 parameters): not tested: 8 residual degrees of freedom (< 10)." in text


def test_failed_runs_are_counted_per_check_for_the_base_and_the_candidates(tmp_path):
    small = "training loss fell by less than 10% (0.7041 at the start, 0.6649 at the end)"
    flat = "training loss did not fall (0.6734 at the start, 0.6904 at the end)"
    failed = [Score(repo_id=repo, revision=sha(repo), scorer="intertraining", metric="target_score", target="sst2",
                    seed=seed, value=0.6, config_hash=CHASH, config_json=CJSON, base_id=BASE, status="failed",
                    extra=FinetuneRun(failure=reasons).to_json())
              for repo, seed, reasons in ((repo_of("sick"), 1000, (small,)), (repo_of("rte"), 1000, (small,)),
                                          (BASE, 2000, (flat,)))]
    report = report_of(build_study_store(tmp_path / "s.db", ADDITIVE, extra_scores=failed), BASE)
    assert (report.runs.base_failed, report.runs.candidate_failed) == (1, 2)
    text = render_markdown(report)
    assert "base 1 of 16, candidates 2 of 92." in text
    assert ("one class predicted: base 0, candidates 0; within the margin of the majority-class rate: base 0, "
            "candidates 0; training loss did not fall: base 1, candidates 0; training loss fell by less than 10%: "
            "base 0, candidates 2.") in text


def test_power_is_computed_from_the_runs_by_hand(tmp_path):
    report = report_of(build_study_store(tmp_path / "s.db", ADDITIVE), BASE)
    power = report.power
    # the base: three runs at mean ± 1 point on each of the five targets (no sweep stored: every target kept)
    assert power.targets == tuple(TARGETS) and power.base_sd.df == 10 and power.base_sd.sd == pytest.approx(1.0)
    design = {m.seeds[0]: m for m in power.design}
    assert set(design) == {3, 5, 8} and design[5].df == 20 and design[5].n_targets == 5
    t = stats.t.ppf(0.975, 20) + stats.t.ppf(0.80, 20)
    assert design[5].mde == pytest.approx(t * math.sqrt(2) * math.sqrt(5 / 5) / 5)
    # the candidates: each paired seed is the planted gain + (0.3, −0.3, 0) points, in every cell
    assert power.paired_sd.sd == pytest.approx(0.3) and power.paired_sd.n_groups == 6 * 5
    assert power.measured.seeds == (3,) * 5 and power.measured.mde == pytest.approx(
        minimum_detectable_gain(0.3, [3] * 5).mde)
    text = render_markdown(report)
    assert f"5 seeds × 5 targets {design[5].mde:.2f} pts (df = 20)" in text
    assert f"5 seeds × 5 targets reach ≤ 2.5 pts: yes ({design[5].mde:.2f} pts)" in text
    assert f"the minimum detectable mean gain was {power.measured.mde:.2f} pts (df = 10)." in text
    assert pooled_sd([[1.0, 2.0, 3.0], [5.0]]).df == 2


META = {
    "study": {"targets": "sst2,trec,sick", "max_targets": 2, "base_seeds": 5, "candidate_seeds": 5,
              "sources": "local"},
    "source_checks": [
        {"source": "sick", "repo_id": repo_of("sick"), "metric": "accuracy", "test_score": 0.853,
         "majority_rate": 0.509, "status": "ok", "reason": "", "train_rows": 997,
         "removed": {"sst2": 3, "trec": 0, "sick": 12}, "remaining_overlap": 0, "sha256": "ab" * 32,
         "recipe": "fallback", "first_attempt": {"test_score": 0.509, "reason": "predicted one class for every test "
                                                 "example", "train_rows": 1000, "epochs": 2, "lr": 2e-4}},
        {"source": "rte", "repo_id": repo_of("rte"), "metric": "accuracy", "test_score": 0.52,
         "majority_rate": 0.527, "status": "rejected",
         "reason": "test accuracy 52.00% is within 2% of the majority-class rate 52.70%", "train_rows": 1000,
         "removed": {"sst2": 0, "trec": 1}, "remaining_overlap": 0, "sha256": "cd" * 32},
    ],
    "checkpoints": {BASE: "ef" * 32, repo_of("sick"): "ab" * 32},
    "target_overlap": {"sst2|trec": 0, "sick|sst2": 4},
}


def test_design_sources_and_contamination_come_from_the_snapshots_meta(tmp_path):
    store = build_study_store(tmp_path / "s.db", ADDITIVE)
    report = report_of(store, BASE, meta=META)
    assert report.meta.config.max_targets == 2 and report.meta.source_checks[1].status == "rejected"
    c = report.contamination
    assert (c.rows_removed, c.pairs_with_removals, c.pairs_checked, c.remaining) == (16, 3, 5, 0)
    text = render_markdown(report)
    assert "Seeds configured: base 5, candidates 5 per target; ok runs stored: base mrpc 3, rte 3, sick 3, " in text
    assert f"Base checkpoint sha256 {'ef' * 6}." in text
    assert "2 fine-tuned, 1 passed, 1 rejected (table below)." in text
    assert "16 training rows removed across 3 (source, target) pairs (of 5 checked); 0 remain." in text
    assert "Overlap between the targets' own texts: sick and sst2 4." in text
    header = ("| source | own-task test score | majority class | status | rows removed: mrpc | rows removed: rte | "
              "rows removed: sick | rows removed: sst2 | rows removed: trec | train rows | sha256 |")
    assert header in text
    assert (f"| sick | 85.3 % | 50.9 % | ok (fallback recipe; the first recipe: 50.9 %, predicted one class for every "
            f"test example) | – | – | 12 | 3 | 0 | 997 | {'ab' * 6} |") in text
    assert ("| rte | 52.0 % | 52.7 % | rejected: test accuracy 52.00% is within 2% of the majority-class rate "
            f"52.70% | – | – | – | 0 | 1 | 1000 | {'cd' * 6} |") in text


def test_a_snapshot_without_those_keys_says_so(tmp_path):
    assert read_meta(None) == StudyMeta() == read_meta({"study": "not a mapping", "source_checks": {}})
    report = report_of(build_study_store(tmp_path / "s.db", ADDITIVE), BASE)
    assert report.contamination is None and report.meta == StudyMeta()
    text = render_markdown(report)
    assert f"Seeds configured: {NOT_RECORDED};" in text and f"Base checkpoint sha256: {NOT_RECORDED}." in text
    assert f"before it became a candidate): {NOT_RECORDED}." in text
    assert f"removed before the source was trained): {NOT_RECORDED}." in text
    assert "no learning-rate sweep: every target of the suite quick is kept; kept 5 (mrpc, rte, sick, sst2, trec)" \
        in text


def test_source_labels_come_from_dataset_tags_and_stay_unique():
    def candidate(repo_id, *tags):
        return Candidate(repo_id=repo_id, base_id=BASE, sha=sha(repo_id), kind=Kind.FINETUNE, match=Match.TAG,
                         status=CandidateStatus.OK, tags=tags)

    labels = source_labels([candidate("a/one", "bert", "dataset:sick"), candidate("a/two", "dataset:sick"),
                            candidate("a/three", "dataset:glue", "dataset:mnli"), candidate("a/four", "dataset:")])
    assert labels == {"a/one": "sick", "a/two": "sick", "a/three": "glue+mnli"}
    rows = pd.DataFrame({"repo_id": ["a/one", "a/two", "a/three", "a/four", "a/none"],
                         "gain:x": [0.01, 0.02, 0.03, 0.04, np.nan]})
    assert list(study_rows(rows, labels)["source"]) == ["a/four", "glue+mnli", "sick (a/one)", "sick (a/two)"]


def test_the_validity_section_shows_the_replicates_reliability_and_the_published_baseline(tmp_path):
    from types import SimpleNamespace

    gains = {s: {t: 0.01 * ((3 * i + j) % 7) - 0.03 for j, t in enumerate(TARGETS)} for i, s in enumerate(SOURCES)}
    replicated = [Score(repo_id=repo_of(s), revision=sha(repo_of(s)), scorer="free_energy", metric=metric, seed=seed,
                        value=value + 0.5 * seed, config_hash="fe3", base_id=BASE)
                  for i, s in enumerate(SOURCES) for seed in range(3)
                  for metric, value in (("llc_mean", 2.0 + i), ("init_loss", 5.0 - 0.1 * i),
                                        ("free_energy", 500.0 - 10 * i + 4.6 * i), ("weight_distance", 1.0 + i))]
    store = build_study_store(tmp_path / "s.db", gains, extra_scores=replicated)
    rows = pd.DataFrame({"probe_accuracy": [0.1, 0.2, 0.3, 0.4], "mean_gain": [0.01, 0.03, 0.02, 0.04]})
    published = SimpleNamespace(base_id="FacebookAI/roberta-base", rows=rows, suite=("a", "b"))
    report = report_of(store, BASE, published=published)
    v = report.validity
    assert (v.fe_total, v.fe_replicates, v.published.tau) == (18, 3, pytest.approx(4 / 6))
    lam = v.reliability.row("llc_mean")  # each model's replicates differ by the same 0, 0.5, 1: MSW = 0.25
    assert (lam.n_models, lam.n_runs, lam.within) == (6, 18, pytest.approx(0.25))
    assert lam.between == pytest.approx(3.5 - 0.25 / 3)  # the models' means 2..7: variance 3.5, minus MSW / k
    text = render_markdown(report)
    assert "τ +0.67 over 4 models with both." in text
    assert "| λ̂ | " in text and "λ̂ tells these models apart beyond its own noise" in text
    assert "| weight distance ‖w − w_base‖ | " in text and "| weight distance ‖w − w_base‖ | not measured" not in text
    assert "not computed here" in render_markdown(report_of(store, BASE))  # no 2023 board given
