"""Known answers of the offline study's report: planted gains, effects, shifts and savings read back."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats  # pinned in requirements-dev.txt: a missing scipy is an error, never a skip

from data.records import Candidate, CandidateStatus, Kind, Match, Score
from ranking.leaderboard import Z_95
from ranking.study_markdown import NOT_MEASURED, render_markdown
from ranking.study_report import (
    fit_additive,
    source_labels,
    source_means,
    study_rows,
    t_quantile,
)
from tests.helpers.boards import report_of
from tests.helpers.study_store import (
    BASE,
    BASE_SCORES,
    SEED_NOISE,
    SEED_OFFSETS,
    build_study_store,
    repo_of,
    sha,
    target_scores,
)

TARGETS = sorted(BASE_SCORES)  # mrpc, rte, sick, sst2, trec
SOURCES = ["mnli", *TARGETS]  # mnli is a source only; the others are also targets (a diagonal)
A = {s: 0.01 * i - 0.02 for i, s in enumerate(SOURCES)}  # planted source effects (fractions)
B = {t: 0.007 * (j % 3) - 0.004 for j, t in enumerate(TARGETS)}  # planted target effects
ADDITIVE = {s: {t: 0.003 + A[s] + B[t] for t in TARGETS} for s in SOURCES}


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


def test_a_known_source_effect_comes_first_with_its_known_mean(tmp_path):
    pattern = [0.004, -0.006, 0.001, 0.005, -0.002]
    gains = {s: {t: pattern[(i + j) % 5] for j, t in enumerate(TARGETS)} for i, s in enumerate(TARGETS)}
    gains["mnli"] = dict.fromkeys(TARGETS, 0.03)
    report = report_of(build_study_store(tmp_path / "s.db", gains), BASE)
    first = report.sources.iloc[0]
    assert first["source"] == "mnli" and first["repo_id"] == repo_of("mnli")
    assert (first["mean"], first["low"], first["high"], first["n_targets"]) == pytest.approx((3.0, 3.0, 3.0, 5))
    sick = report.sources.set_index("source").loc["sick"]
    off_diagonal = [100 * gains["sick"][t] for t in TARGETS if t != "sick"]
    half = t_quantile(3) * np.std(off_diagonal, ddof=1) / 2
    assert (sick["mean"], sick["low"], sick["high"]) == pytest.approx(
        (np.mean(off_diagonal), np.mean(off_diagonal) - half, np.mean(off_diagonal) + half))
    assert "**Best source:** mnli, +3.00 pts (95% CI +3.00 to +3.00) over the other targets" in render_markdown(report)


def test_beats_base_counts(tmp_path):
    means = {"anli": 0.03, "boolq": 0.02, "cola": 0.005, "qnli": -0.01, "wnli": -0.02}
    report = report_of(build_study_store(tmp_path / "s.db", {s: dict.fromkeys(TARGETS, g)
                                                                for s, g in means.items()}), BASE)
    # interval half-width by hand: base variance 1e-4 over 3 seeds + one candidate run (the base's variance)
    half = Z_95 * math.sqrt(len(TARGETS) * (1e-4 / 3 + 1e-4)) / len(TARGETS)
    assert 0.005 < half < 0.02
    assert (report.n_ranked, report.n_beat_base, report.n_positive) == (5, 2, 3)
    assert "**Beat the base beyond seed noise:** 2 of 5 candidates" in render_markdown(report)
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
    for line in ("| linear probe (its stage-1 target) | not measured | — | 0 | + |",
                 "| free energy F | not measured | — | 0 | − |",
                 "What λ̂ adds over L_n(w*): not measured (fewer than 3 models with both).",
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
    assert re.search(r"[+−]\d+\.\d\d pts \(95% CI [+−]\d+\.\d\d to [+−]\d+\.\d\d\)", texts[0])
    assert not re.search(r"(?<![\w/-])-\d", texts[0])  # negative numbers carry a real minus sign
    assert "(+0.60)" in texts[0]  # rte on rte, a diagonal cell, in parentheses
    assert "R² 1.00, RMSE 0.00 pts" in texts[0] and "permutation p = 0.001" in texts[0]


def test_source_means_follow_the_diagonal_choice():
    matrix = pd.DataFrame([[9.0, 1.0, 2.0]], index=["a"], columns=["a", "b", "c"])
    assert source_means(matrix).iloc[0]["mean"] == pytest.approx(1.5)
    assert source_means(matrix, exclude_diagonal=False).iloc[0]["mean"] == pytest.approx(4.0)
    assert t_quantile(1) == pytest.approx(12.7062) and t_quantile(40) == pytest.approx(2.0211, abs=1e-4)


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
