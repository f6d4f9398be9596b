"""The personal ranking's table (ranking/personal.py): ranks per estimator, the general position, the combined
rule on worked examples, and the exports' round trips."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest

from data.personal_record import Estimate, PersonalRanking, RankedModel, RankingFormatError
from ranking.personal import (
    combined_ranks,
    estimator_ranks,
    general_positions,
    personal_csv,
    personal_frame,
    personal_json,
    personal_result,
)

NAMES = ["cv_probe", "cv_knn", "logme"]
METRICS = {"cv_probe": "cv_probe_accuracy", "cv_knn": "cv_knn_accuracy", "logme": "logme"}


def entry(repo, gain, rank, values, *, status=None, role="candidate", error=""):
    status = status or {}
    estimates = {} if error else {n: Estimate(metric=METRICS[n], value=v, status=status.get(n, "ok"),
                                              error="collapsed" if status.get(n) == "failed" else "")
                                  for n, v in zip(NAMES, values, strict=True)}
    return RankedModel(repo_id=repo, revision="r" * 40, role=role, general_rank=rank, mean_gain=gain,
                       estimates=estimates, error=error)


def test_the_base_takes_its_place_at_gain_zero_and_a_model_without_a_gain_has_no_general_place():
    entries = [entry("b/base", 0.0, None, (0, 0, 0), role="base"), entry("a", 1.5, 1, (0, 0, 0)),
               entry("./mine", None, None, (0, 0, 0)), entry("d", -0.5, 2, (0, 0, 0))]
    assert general_positions(entries) == [2, 1, None, 3]


def test_a_model_without_a_general_gain_is_ranked_by_the_estimators_alone():
    # a local folder the general board never saw: no general vote, so its estimators decide, not a last place there
    entries = [entry("b/base", 0.0, None, (0.6, 0.6, -2), role="base"), entry("./mine", None, None, (0.9, 0.9, -1)),
               entry("./other", None, None, (0.5, 0.5, -3))]
    # base: (2 + 2 + 2 + general 1) / 4 = 1.75; ./mine: (1 + 1 + 1) / 3 = 1; ./other: 3
    assert combined_ranks(entries, NAMES) == [2, 1, 3]
    assert [m.repo_id for m in personal_result(entries, metrics=METRICS, protocols={}, base_id="b/base",
                                                source="x", summary={}).models] == ["./mine", "b/base", "./other"]


def test_ties_share_the_better_rank_and_a_failed_estimate_has_none():
    entries = [entry("a", 1, 1, (0.9, 0.5, -1)), entry("b", 1, 2, (0.9, 0.6, -2), status={"cv_knn": "failed"}),
               entry("c", 1, 3, (0.7, 0.4, -3))]
    assert estimator_ranks(entries, "cv_probe") == [1, 1, 3]
    assert estimator_ranks(entries, "cv_knn") == [1, None, 2]


def test_the_combined_rank_is_the_mean_of_the_votes_ties_to_the_general_rank():
    # general positions 1, 2, 3; estimator ranks: a (3, 3, 3), b (1, 1, 1), c (2, 2, 2)
    entries = [entry("a", 3.0, 1, (0.1, 0.1, -3)), entry("b", 2.0, 2, (0.9, 0.9, -1)),
               entry("c", 1.0, 3, (0.5, 0.5, -2))]
    # means: a (9 + 1) / 4 = 2.5, b (3 + 2) / 4 = 1.25, c (6 + 3) / 4 = 2.25
    assert combined_ranks(entries, NAMES) == [3, 1, 2]
    # a failed estimate is left out of the mean; no passing estimate: no combined rank
    entries[1] = entry("b", 2.0, 2, (0.9, 0.9, -1), status={"cv_probe": "failed", "cv_knn": "failed"})
    entries.append(entry("d", 0.5, 4, (1, 1, 1), status=dict.fromkeys(NAMES, "failed")))
    # b: logme rank 1, general 2 -> 1.5; a: (3 + 3 + 3 + 1) / 4 = 2.5; c: (2 + 2 + 2 + 3) / 4 = 2.25
    assert combined_ranks(entries, NAMES) == [3, 1, 2, None]


def test_equal_means_go_to_the_better_general_rank():
    entries = [entry("a", 2.0, 1, (0.5, 0.5, -2)), entry("b", 1.0, 2, (0.9, 0.9, -1))]
    # a: (2 + 2 + 2 + 1) / 4 = 1.75; b: (1 + 1 + 1 + 2) / 4 = 1.25 -> b first; with one estimator they tie
    assert combined_ranks(entries, NAMES) == [2, 1]
    assert combined_ranks(entries, ["cv_probe"]) == [1, 2]  # a: (2 + 1) / 2 = b: (1 + 2) / 2; a is better in general


def result():
    entries = [entry("b/base", 0.0, None, (0.6, 0.55, -0.7), role="base"), entry("=cmd", 1.0, 1, (0.8, 0.7, -0.5)),
               entry("x/y", 0.5, 2, (0.7, 0.6, -0.6), status={"logme": "failed"}),
               entry("x/broken", 0.2, 3, (0, 0, 0), error="no safetensors")]
    return personal_result(entries, metrics=METRICS, protocols=dict.fromkeys(NAMES, "h"), base_id="b/base",
                           source="upload:mine.csv", summary={"rows": 10})


def test_the_result_is_ordered_by_combined_rank_with_the_unranked_last():
    r = result()
    assert [m.repo_id for m in r.models] == ["=cmd", "x/y", "b/base", "x/broken"]
    assert [m.combined_rank for m in r.models] == [1, 2, 3, None]
    assert "one vote" in r.rule and list(r.estimators) == NAMES


def test_the_frame_csv_and_json_round_trip():
    r = result()
    frame = personal_frame(r)
    assert list(frame["repo_id"]) == ["=cmd", "x/y", "b/base", "x/broken"]
    assert frame.loc[1, "logme_status"] == "failed: collapsed" and pd.isna(frame.loc[1, "logme"])
    assert frame.loc[3, "cv_probe_accuracy_status"] == "not run" and frame.loc[3, "error"] == "no safetensors"
    back = pd.read_csv(io.BytesIO(personal_csv(r)))
    assert back.loc[0, "repo_id"] == "'=cmd"  # opens as text in a spreadsheet, not as a formula
    assert back["cv_probe_accuracy"].iloc[:3].tolist() == pytest.approx([0.8, 0.7, 0.6])
    assert list(back["combined_rank"].iloc[:3]) == [1, 2, 3] and pd.isna(back.loc[3, "combined_rank"])
    assert PersonalRanking.from_json(json.loads(personal_json(r))) == r


def test_the_stored_record_is_versioned_and_another_layout_is_refused_in_a_sentence():
    doc = result().to_json()
    assert doc["version"] == 1 and PersonalRanking.from_json(doc) == result()
    legacy = {k: v for k, v in doc.items() if k != "version"}  # written before the layout had a version: 1
    assert PersonalRanking.from_json(legacy) == result()
    for bad in ({**doc, "version": 2}, [doc], {**doc, "models": [{"repo_id": "a"}]}, {**doc, "models": None}):
        with pytest.raises(RankingFormatError, match="stored personal ranking"):
            PersonalRanking.from_json(bad)


def test_the_validation_table_correlates_each_predictor_with_the_gain_on_its_target():
    from ranking.personal_validation import validation_markdown, validation_rows

    gain = [0.0, 3.0, -1.0, 2.0, -4.0]
    frame = pd.DataFrame({"repo_id": list("abcde"), "gain": gain, "general": [-g for g in gain],
                          "cv_probe_accuracy": [0.5 + g / 10 for g in gain], "cv_knn_accuracy": [0.7] * 5,
                          "logme": [float("nan")] + [g / 3 for g in gain[1:]]})
    rows = {r["predictor"]: r for r in validation_rows({"t": frame}, n_boot=200)}
    assert rows["cv_probe_accuracy"]["rho"] == pytest.approx(1.0) and rows["general"]["rho"] == pytest.approx(-1.0)
    assert math.isnan(rows["cv_knn_accuracy"]["rho"])  # a constant predictor says nothing
    assert rows["logme"]["n"] == 4 and rows["logme"]["rho"] == pytest.approx(1.0)  # the failed estimate left out
    # combined: probe and logme agree with the gain, kNN ties everywhere, general is reversed
    assert rows["combined"]["n"] == 5 and -1 < rows["combined"]["rho"] <= 1
    table = validation_markdown(list(rows.values()))
    assert table[0].startswith("| target |") and any("n/a" in line for line in table)
