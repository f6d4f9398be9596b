"""The validity table: known correlations on hand-made scores, what it keeps and drops, and its sentences."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats  # pinned in requirements-dev.txt: a missing scipy is an error, never a skip

from data.payloads import FreeEnergyRun, KnnRun
from data.records import Score
from ranking.stats import spearman_p
from ranking.validity import (
    PARTIAL_METRIC,
    PUBLISHED_BASELINE_BASE,
    lambda_verdict,
    predictor_frame,
    published_baseline,
    published_line,
    validity,
    validity_markdown,
)

GAINS = {"base": 0.0, "a": 1.0, "b": 2.0, "c": -1.0, "d": 3.0}


def score(repo, metric, value, *, target="t1", status="ok", scorer=None, n=100):
    scorer = scorer or {"knn_accuracy": "knn", "probe_accuracy": "linear_probe"}.get(metric, "free_energy")
    extra = (FreeEnergyRun(n=n) if scorer == "free_energy" else KnnRun(k=10)).to_json()
    return Score(repo_id=repo, revision="r" * 40, scorer=scorer, metric=metric, target=target, seed=0, value=value,
                 config_hash="h", config_json="{}", base_id="base", extra=extra, status=status)


def free_energy_scores(repo, loss, llc, status="ok", n=100):
    return [score(repo, "init_loss", loss, status=status, n=n), score(repo, "llc_mean", llc, status=status, n=n),
            score(repo, "free_energy", n * loss + llc * math.log(n), status=status, n=n)]


@pytest.fixture
def scores():
    out = []
    for i, (repo, gain) in enumerate(sorted(GAINS.items())):
        out += free_energy_scores(repo, loss=5.0 - gain, llc=float(i), status="ok" if repo != "c" else "unconverged")
        out += [score(repo, "knn_accuracy", 0.5 + gain / 10, target="t1"),
                score(repo, "knn_accuracy", 0.5 + gain / 10, target="t2"),
                score(repo, "knn_accuracy", 0.9, target="not_in_suite")]
    out.append(score("outsider", "knn_accuracy", 0.1))  # no gain: not a row
    out.append(score("a", "probe_accuracy", 0.3, status="failed"))  # a failed score is no value
    return out


def test_predictors_that_order_the_models_as_the_gain_does_get_rho_one(scores):
    frame = predictor_frame(scores, GAINS, targets=("t1", "t2"))
    assert list(frame["repo_id"]) == sorted(GAINS)
    assert frame.set_index("repo_id").loc["a", "knn_accuracy"] == pytest.approx(0.6)  # not_in_suite left out
    v = validity(frame, n_boot=200)
    rho = {r.metric: r.spearman for r in v.rows}
    assert rho["knn_accuracy"].rho == pytest.approx(1.0) and rho["knn_accuracy"].n == 5
    assert rho["init_loss"].rho == pytest.approx(-1.0)
    assert math.isnan(rho["probe_accuracy"].rho) and rho["probe_accuracy"].n == 0
    assert (v.fe_passed, v.fe_total, v.n_models) == (4, 5, 5)  # c is unconverged, and still in the table


def test_the_two_terms_of_free_energy_are_compared(scores):
    v = validity(predictor_frame(scores, GAINS), n_boot=0)
    assert v.n_log_n == pytest.approx(math.log(100))
    assert v.lambda_term == pytest.approx((0.0, 4 * math.log(100)))  # λ̂ 0..4 over the sorted repos
    assert v.loss_term == pytest.approx((100 * 2.0, 100 * 6.0))
    sentence = lambda_verdict(v)
    assert "λ̂·log n spans 18.4 nats against 400.0 for n·L_n(w*)" in sentence
    assert "no better than L_n(w*) alone" in sentence


def test_the_markdown_has_every_predictor_and_says_what_was_not_measured(scores):
    lines = validity_markdown(validity(predictor_frame(scores, GAINS), n_boot=100))
    text = "\n".join(lines)
    assert "4 of 5 free-energy estimates passed the convergence gate; the unconverged ones are used" in text
    assert "| linear probe (its stage-1 target) | not measured | — | — | 0 | + | — |" in text
    assert "| weight distance ‖w − w_base‖ | not measured | — | — | 0 | − | — |" in text  # shown, not dropped
    assert "| free energy F | −1.00 | 0.017 | " in text and "| primary (named before the run) |" in text
    table = text.split("\n\nWhat λ̂")[0]
    assert table.count("\n| ") == 9  # header + 7 predictors + λ̂'s partial
    models = text.split("\n\n| model |")[1]
    rows = models.splitlines()[2:]  # then every model's numbers, by mean gain
    assert [r.split(" | ")[0].strip("| ") for r in rows] == ["d", "b", "a", "base", "c"]
    assert rows[-1].endswith("| failed |") and rows[0].endswith("| passed |")  # c's estimate is unconverged


def test_too_few_models_say_so():
    v = validity(predictor_frame(free_energy_scores("a", 1.0, 1.0), {"a": 1.0}), n_boot=10)
    assert lambda_verdict(v).endswith("not measured (fewer than 3 models with both).")


def test_the_command_reads_gains_from_one_store_and_predictors_from_another(tmp_path, capsys):
    from data.snapshot import DEFAULT_SNAPSHOT, seed_store
    from data.store import Store
    from ranking.__main__ import main

    base = "sentence-transformers/all-MiniLM-L6-v2"
    seed_store(Store(tmp_path / "gains.db"), DEFAULT_SNAPSHOT)
    other = Store(tmp_path / "other.db")
    seed_store(other, DEFAULT_SNAPSHOT)
    moved = [replace_revision(s) for s in other.scores(base_id=base) if s.scorer == "linear_probe"]
    Store(tmp_path / "moved.db").add_scores(moved)
    assert main(["validity", "--base", base, "--db", str(tmp_path / "gains.db")]) == 0
    out = capsys.readouterr().out
    assert "| free energy F |" in out and "passed the convergence gate" in out
    assert main(["validity", "--base", base, "--db", str(tmp_path / "gains.db"),
                 "--predictors-db", str(tmp_path / "moved.db")]) == 0
    out = capsys.readouterr().out
    assert "10 of 10 candidates were scored at another revision there" in out  # the bundled study
    assert "| free energy F | not measured |" in out  # the other store holds probes only
    assert main(["validity", "--base", base, "--db", str(tmp_path / "empty.db")]) == 1
    assert "no mean gains" in capsys.readouterr().err


def replace_revision(s):
    from dataclasses import replace

    return replace(s, revision="f" * 40)


# --- issue 30: replicates, exact p-values, the partial Spearman, the comparison with the primary, the baseline ----

def replicated_scores(rng, models=11):
    """Three free-energy replicates per model (seeds 0-2; the first of each unconverged), the weight distance with
    them, and a kNN score; the gain is the model's index."""
    gains = {f"m{i:02d}": float(i) for i in range(models)}
    out = []
    for i, repo in enumerate(gains):
        for seed in range(3):
            status = "unconverged" if seed == 0 else "ok"
            loss, llc = 5.0 - 0.1 * i + 0.3 * rng.normal(), 3.0 + rng.normal()
            out += [replace(s, seed=seed) for s in free_energy_scores(repo, loss, llc, status=status)]
            out.append(replace(score(repo, "weight_distance", float(i % 4) + rng.normal(), status=status), seed=seed))
        out.append(score(repo, "knn_accuracy", 0.5 + 0.01 * rng.normal()))
    return out, gains


def test_replicates_are_averaged_per_model_and_every_estimate_is_counted():
    scores, gains = replicated_scores(np.random.default_rng(0))
    frame = predictor_frame(scores, gains)
    mine = [s.value for s in scores if s.repo_id == "m03" and s.metric == "llc_mean"]
    assert len(mine) == 3 and frame.set_index("repo_id").loc["m03", "llc_mean"] == pytest.approx(np.mean(mine))
    v = validity(frame, n_boot=200)
    assert (v.fe_passed, v.fe_total, v.fe_replicates) == (22, 33, 3)
    text = "\n".join(validity_markdown(v))
    assert "each model's mean over its replicates (up to 3 here)" in text and "| 2 of 3 passed |" in text
    assert "22 of 33 free-energy estimates passed the convergence gate" in text


def test_each_row_carries_its_exact_p_value_and_its_difference_from_the_primary():
    scores, gains = replicated_scores(np.random.default_rng(1))
    frame = predictor_frame(scores, gains)
    v = validity(frame, n_boot=300)
    rows = {r.metric: r for r in v.rows}
    assert [r.metric for r in v.rows][:5] == ["free_energy", "init_loss", "llc_mean", PARTIAL_METRIC,
                                               "weight_distance"]
    for metric in ("free_energy", "init_loss", "weight_distance", "knn_accuracy"):
        assert rows[metric].p == spearman_p(frame[metric], frame["mean_gain"])
        assert rows[metric].p.method == "exact" and rows[metric].p.n_permutations == math.factorial(11)
        assert rows[metric].spearman.rho == pytest.approx(stats.spearmanr(frame[metric], frame["mean_gain"])[0])
    assert rows["free_energy"].versus_primary is None
    for metric in ("init_loss", "weight_distance", "knn_accuracy"):  # sign-aligned: ρ × the expected sign
        d, sign = rows[metric].versus_primary, rows[metric].expected_sign
        assert d.delta == pytest.approx(sign * rows[metric].spearman.rho + rows["free_energy"].spearman.rho)
        assert d.low <= d.delta <= d.high and d.n == 11


def test_lambdas_partial_spearman_given_the_loss_is_computed_from_residualised_ranks():
    scores, gains = replicated_scores(np.random.default_rng(2))
    frame = predictor_frame(scores, gains)
    row = next(r for r in validity(frame, n_boot=300).rows if r.metric == PARTIAL_METRIC)
    rl, rg, rz = (stats.rankdata(frame[c]) for c in ("llc_mean", "mean_gain", "init_loss"))
    design = np.column_stack([np.ones(11), rz])
    el = rl - design @ np.linalg.lstsq(design, rl, rcond=None)[0]
    eg = rg - design @ np.linalg.lstsq(design, rg, rcond=None)[0]
    assert row.spearman.rho == pytest.approx(el @ eg / math.sqrt((el @ el) * (eg @ eg)), abs=1e-12)
    assert row.spearman.low <= row.spearman.rho <= row.spearman.high and row.spearman.n == 11
    assert row.p.method == "residual permutation" and row.p.n_permutations == 10_000
    assert row.versus_primary.n == 11 and math.isfinite(row.versus_primary.delta)
    assert "‡ λ̂'s ranks residualised on L_n(w*)'s" in "\n".join(validity_markdown(validity(frame, n_boot=50)))


def test_the_published_baseline_is_kendalls_tau_over_the_models_having_both():
    from types import SimpleNamespace

    rows = pd.DataFrame({"repo_id": list("abcdef"), "probe_accuracy": [0.1, 0.2, 0.3, 0.4, np.nan, 0.5],
                         "mean_gain": [0.01, 0.03, 0.02, 0.04, 0.05, np.nan]})
    board = SimpleNamespace(base_id="FacebookAI/roberta-base", rows=rows, suite=tuple("xyz"))
    b = published_baseline(board)
    # a..d have both: 6 pairs, b and c discordant: (5 − 1) / 6
    assert (b.tau, b.n, b.n_targets) == (pytest.approx(4 / 6), 4, 3)
    assert published_line(b) == ("**Published baseline** (IBM's 2023 results, FacebookAI/roberta-base: Kendall τ-b "
                                 "of the MNLI linear probe with the mean gain over its 3 targets): τ +0.67 over 4 "
                                 "models with both.")
    empty = published_baseline(SimpleNamespace(base_id="x", rows=pd.DataFrame(), suite=()))
    assert published_line(empty).endswith("not measured (0 models with both).")
    assert published_line(None).endswith("not computed here (the 2023 board was not given to this report).")


def test_the_published_baseline_on_the_bundled_2023_roberta_board(tmp_path):
    from data.metrics import PUBLISHED_SOURCE
    from data.published import BUNDLED_DIR, DATASET_COLUMNS, import_published
    from data.store import Store
    from ranking.leaderboard import leaderboard_from
    from service.boards import read_board

    store = Store(tmp_path / "published.db")
    import_published(store, BUNDLED_DIR)
    data = read_board(store, PUBLISHED_BASELINE_BASE, PUBLISHED_SOURCE)
    b, every_cell = (published_baseline(leaderboard_from(data, include_suspect=s)) for s in (False, True))
    raw = pd.read_csv(BUNDLED_DIR / "results" / "models_tested.csv.gz")
    raw = raw[raw["base_model"].eq("roberta-base")].dropna(subset=[*DATASET_COLUMNS, "mnli_lp"])
    assert (b.n, b.n_targets) == (len(raw), 36) == (386, 36)  # the models with all 36 targets and a probe
    # with the suspect cells in, the mean gain is the file's own mean over 36 targets (less the base's, a constant)
    assert every_cell.tau == pytest.approx(stats.kendalltau(raw["mnli_lp"],
                                                            raw[list(DATASET_COLUMNS)].mean(axis=1))[0])
    assert every_cell.tau == pytest.approx(0.360, abs=0.001)
    assert b.tau == pytest.approx(0.380, abs=0.001)  # the board's default: suspect cells left out
