"""Typed payloads: round trips, versions, validation, the bundled data, and a NaN chain through the store."""

from __future__ import annotations

import json
import math
import sqlite3

import pandas as pd
import pytest

from data.metrics import METRICS, PUBLISHED_SOURCE
from data.payloads import (
    VERSION_KEY,
    CurvePoint,
    FinetuneRun,
    FreeEnergyRun,
    LabelsSaved,
    LoraRun,
    PayloadError,
    PowerLawFit,
    ProbeRun,
    PublishedRow,
    _payload_class,
    payload_of,
    read_protocol,
)
from data.records import Score
from data.store import Store

EXAMPLES = [
    FinetuneRun(dataset_revision="a" * 40, eval_score=0.7, best_step=32, train_examples=1000,
                dropout_rates={"encoder.layer.0": 0.1, "embeddings": 0.05}),
    ProbeRun(dataset_revision="b" * 40, train_accuracy=0.9, feature_seconds=1.5, fit_seconds=0.2),
    FreeEnergyRun(per_chain=(4.0, math.nan, 6.0), nbeta=123.4, n=512, num_chains=3, num_draws=100,
                  diagnostics=("chain 1 diverged",), trace=((1.0, 1.1), (1.0, math.nan), (1.2, 1.3)), head="given",
                  corpus="local"),
    LoraRun(n_labels=128, dataset_revision="c" * 40),
    LoraRun(n_labels=32, dataset_revision="c" * 40, steps=100, batch_size=32, train_examples=32, best_step=60,
            seeds=2, seed_mean=0.7, seed_std=0.05),
    LabelsSaved(reference_accuracy=0.8, base_labels=512.0, candidate_labels=math.inf,
                fits={"org/base": PowerLawFit(0.1, 2.0, 0.5)}),
    LabelsSaved(reference_accuracy=0.85, base_labels=2048.0, candidate_labels=None,
                fits={"org/base": PowerLawFit(0.1, 2.0, 0.5)}, in_range=False, out_of_range="above",
                reason="it needs more than 2048 labels", n_min=32, n_max=2048, base_accuracy=0.855, steps=100,
                curves={"org/base": (CurvePoint(32, 0.5, 0.01, 2), CurvePoint(2048, 0.855, None, 1))}),
    PublishedRow(num_params=124_000_000, last_modified="2022-08-04T10:36:41.000Z", model_type="roberta"),
]


def _same(a, b) -> bool:
    """Equal, with NaN equal to NaN (what a round trip must keep)."""
    return json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: type(p).__name__)
def test_every_payload_round_trips_through_standard_json(payload):
    text = json.dumps(payload.to_json(), allow_nan=False)  # NaN is written as null: standard JSON
    back = type(payload).from_json(json.loads(text))
    assert _same(back, payload) and json.loads(text)[VERSION_KEY] == payload.version
    if isinstance(payload, FreeEnergyRun):
        assert math.isnan(back.per_chain[1]) and back.per_chain[0] == 4.0 and math.isnan(back.trace[1][1])


def test_version_0_the_unversioned_extras_read_and_an_unknown_version_is_refused():
    old = {"per_chain": [1.0, 2.0], "nbeta": 9.0, "n": 8, "diagnostics": ["x"]}  # as stored before versions
    assert FreeEnergyRun.from_json(old).per_chain == (1.0, 2.0)
    with pytest.raises(PayloadError, match="version 7 is unknown"):
        FreeEnergyRun.from_json({**old, VERSION_KEY: 7})


@pytest.mark.parametrize(("data", "message"), [
    ({"n_labels": "many"}, r"LoraRun.n_labels must be int, got 'many'"),
    ({"n_labels": True}, r"LoraRun.n_labels must be int"),
    ({"n_labels": 8, "colour": "red"}, r"unknown fields \['colour'\]"),
    ({}, r"n_labels"),
    ([1, 2], r"must be a JSON object"),
])
def test_a_malformed_payload_is_refused_with_a_sentence_naming_the_field(data, message):
    with pytest.raises((PayloadError, TypeError), match=message):
        LoraRun.from_json(data)


def test_sample_efficiency_payloads_stored_before_the_range_check_and_spread_still_read():
    old_run = LoraRun.from_json({VERSION_KEY: 1, "n_labels": 512, "dataset_revision": "d" * 40})
    assert (old_run.steps, old_run.seeds, old_run.seed_std) == (None, None, None)
    old_saved = LabelsSaved.from_json({VERSION_KEY: 1, "reference_accuracy": 0.855, "base_labels": 2712.0,
                                       "candidate_labels": 7317.0,
                                       "fits": {"b/base": {"a": 0.136, "b": 7.07, "gamma": 0.85}}})
    assert old_saved.in_range is None and old_saved.out_of_range == "" and old_saved.curves == {}
    assert LabelsSaved.from_json({"candidate_labels": "inf"}).candidate_labels == math.inf  # version 0
    with pytest.raises(PayloadError, match=r"LabelsSaved.in_range must be bool, got 1"):
        LabelsSaved.from_json({VERSION_KEY: 1, "in_range": 1})
    with pytest.raises(PayloadError, match=r"curves\['b'\]\[0\] must have the fields"):
        LabelsSaved.from_json({VERSION_KEY: 1, "curves": {"b": [{"n_labels": 8}]}})


def test_a_malformed_stored_payload_names_the_score():
    score = Score(repo_id="a/x", revision="r", scorer="free_energy", metric="llc_mean", value=1.0,
                  extra={"per_chain": ["high"]})
    with pytest.raises(PayloadError, match=r"a/x's free_energy/llc_mean .*per_chain\[0\] must be float"):
        payload_of(score)


def test_every_score_of_the_bundled_data_reads_its_payload_and_protocol():
    from data.settings import DEFAULT_PUBLISHED, DEFAULT_SNAPSHOT
    from service.bundles import read_published_bundle, read_study

    kinds = set()
    for bundle in (read_study(DEFAULT_SNAPSHOT), read_published_bundle(DEFAULT_PUBLISHED)):
        for score in bundle[2]:
            payload = payload_of(score)
            kinds.add(type(payload))
            assert (type(payload) is PublishedRow) == (score.source == PUBLISHED_SOURCE)
            read_protocol(score.config_json)
    declared = {_payload_class(m.payload) for m in METRICS.values() if m.payload}
    assert kinds == {*declared, PublishedRow}  # the study (issue 29) scores kNN and LogME too


def test_old_intertraining_protocols_read_in_the_one_layout():
    old = json.dumps({"finetune": {"lr": 1e-4, "dropout": "guided"}, "suite": [["rte", "r" * 40]]})
    new = json.dumps({"scorer": "intertraining", "config": {"finetune": {"lr": 1e-4, "dropout": "guided"}},
                      "data": [["rte", "r" * 40]]})
    assert read_protocol(old) == read_protocol(new)
    with pytest.raises(PayloadError, match="not JSON"):
        read_protocol("{")


def test_free_energy_diagnostics_and_a_nan_chain_reach_the_model_page_through_the_store(tmp_path):
    from ui.model_page import free_energy_details

    run = FreeEnergyRun(per_chain=(4.0, math.nan, 6.0), nbeta=123.4, n=512, num_chains=3, num_draws=100,
                        diagnostics=("chain 1 diverged at step 17", "negative LLC (-0.5): w* is <not> a minimum"),
                        corpus="local", head="fitted")
    store = Store(tmp_path / "lb.db")
    store.add_scores([Score(repo_id="a/x", revision="r" * 40, scorer="free_energy", metric=m, value=v, target="local",
                            seed=0, config_hash="h", base_id="b/base", extra=run.to_json())
                      for m, v in (("free_energy", 330.25), ("llc_mean", 5.0), ("llc_std", 1.0), ("init_loss", 0.6))])
    with sqlite3.connect(tmp_path / "lb.db") as conn:
        [(stored,)] = conn.execute("SELECT extra FROM scores WHERE metric = 'llc_mean'").fetchall()
    assert json.loads(stored)["per_chain"] == [4.0, None, 6.0]  # standard JSON in the store
    text, chains = free_energy_details(store, "a/x", "r" * 40)
    assert "1 of 3 chains diverged (NaN)" in text and "nβ 123.4" in text and "n 512" in text
    assert "- chain 1 diverged at step 17" in text
    assert "&lt;not&gt;" in text and "<not>" not in text  # the diagnostic is escaped for markdown
    assert list(chains["status"]) == ["ok", "diverged (NaN)", "ok"]
    assert chains["llc"].iloc[0] == 4.0 and chains["llc"].isna().tolist() == [False, True, False]


def test_an_unconverged_free_energy_is_shown_as_such_and_never_ranked(tmp_path):
    from ranking.leaderboard import leaderboard_from
    from service.boards import read_board
    from ui.model_page import free_energy_details

    run = FreeEnergyRun(per_chain=(-2.0, 1.0), n=128, num_chains=2, grad_norm=0.0123, drift=0.42, r_hat=1.31,
                        acceptance=0.5, gate=("trace drift +0.42 (limit ±0.1): the chains had not relaxed",
                                              "MALA acceptance 0.50 < 0.9: the step is <too> large"))
    ok = FreeEnergyRun(per_chain=(3.0, 3.2), n=128, num_chains=2, grad_norm=0.01, drift=0.01, r_hat=1.01,
                       acceptance=0.95)
    store = Store(tmp_path / "lb.db")
    store.add_scores([Score(repo_id=repo, revision="r" * 40, scorer="free_energy", metric="free_energy", value=v,
                            target="local", seed=0, config_hash="h", base_id="b/base", extra=payload.to_json(),
                            status="unconverged" if payload.gate else "ok")
                      for repo, v, payload in (("a/x", 330.25, run), ("a/y", 310.0, ok))])
    text, _ = free_energy_details(store, "a/x", "r" * 40)
    assert "**unconverged** (not ranked): trace drift" in text and "&lt;too&gt;" in text  # reasons escaped
    assert "trace drift +0.42; split R-hat 1.310; MALA acceptance after burn-in 0.50" in text
    assert "convergence gate: passed" in free_energy_details(store, "a/y", "r" * 40)[0]
    rows = leaderboard_from(read_board(store, "b/base")).rows.set_index("repo_id")
    assert rows.loc["a/x", "free_energy_status"] == "unconverged" and pd.isna(rows.loc["a/x", "free_energy"])
    assert rows.loc["a/y", "free_energy_status"] == "" and rows.loc["a/y", "free_energy"] == 310.0


def test_an_unreadable_stored_payload_is_shown_as_such_not_a_crash(tmp_path):
    from ui.model_page import free_energy_details

    store = Store(tmp_path / "lb.db")
    store.add_scores([Score(repo_id="a/x", revision="r", scorer="free_energy", metric="free_energy", value=1.0,
                            target="local", seed=0, config_hash="h", extra={"per_chain": "oops"})])
    text, chains = free_energy_details(store, "a/x", "r")
    assert "diagnostics unreadable" in text and "must be tuple, got" in text and chains.empty
