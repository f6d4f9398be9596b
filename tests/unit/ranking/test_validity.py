"""The validity table: known correlations on hand-made scores, what it keeps and drops, and its sentences."""

from __future__ import annotations

import math

import pytest

from data.payloads import FreeEnergyRun, KnnRun
from data.records import Score
from ranking.validity import lambda_verdict, predictor_frame, validity, validity_markdown

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
    assert "| linear probe (its stage-1 target) | not measured | — | 0 | + |" in text
    table, models = text.split("\n\n| model |")
    assert table.count("\n| ") == 7  # header + 6 predictors
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
