"""The study's scientific claims, recomputed from the committed snapshot: README must say what it holds.

After a new study is bundled, ``python -m tests.unit.ranking.test_study_snapshot --write`` rewrites README's block
(between the study-report markers) from the snapshot; this module's test then holds it to the snapshot."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from data.payloads import payload_of
from data.records import CandidateStatus
from data.snapshot import DEFAULT_SNAPSHOT, MAX_SNAPSHOT_BYTES, read_snapshot, seed_store
from data.store import Store
from ranking.leaderboard import leaderboard_from
from ranking.study_markdown import render_markdown
from ranking.study_runs import target_protocols
from service.boards import read_board
from tests.helpers.boards import load_leaderboard, report_of

README = Path(__file__).resolve().parents[3] / "README.md"
BASE = "sentence-transformers/all-MiniLM-L6-v2"
MARKERS = re.compile(r"<!-- study-report:start -->\n(.*?)\n<!-- study-report:end -->", re.S)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("snapshot") / "lb.db")
    seed_store(store, DEFAULT_SNAPSHOT)
    return store


def test_the_snapshot_is_the_study_and_small():
    assert DEFAULT_SNAPSHOT.stat().st_size < MAX_SNAPSHOT_BYTES
    snap = read_snapshot(DEFAULT_SNAPSHOT)
    assert [b.repo_id for b in snap.bases] == [BASE]
    sources = snap.meta["sources"]
    ok = [c for c in snap.candidates if c.status is CandidateStatus.OK]
    assert sorted(c.repo_id for c in ok) == sorted(sources)
    for c in ok:  # each candidate is tagged with the dataset it was intertrained on
        assert f"dataset:{sources[c.repo_id]}" in c.tags
    assert {"sources", "linear_probe", "free_energy", "intertraining"} <= set(snap.meta["timings_s"])
    assert {s.scorer for s in snap.scores} >= {"linear_probe", "free_energy", "intertraining", "sample_efficiency"}


def readme_block(store: Store) -> str:
    """README's study block as the bundled snapshot gives it (the app's Insights renders the same report)."""
    return render_markdown(report_of(store, BASE, meta=read_snapshot(DEFAULT_SNAPSHOT).meta))


def test_readme_reports_exactly_what_the_snapshot_holds(store):
    [committed] = MARKERS.findall(README.read_text())
    assert readme_block(store) == committed


def test_every_candidate_was_probed_and_intertrained(store):
    snap = read_snapshot(DEFAULT_SNAPSHOT)
    probed = {s.repo_id for s in snap.scores if s.metric == "probe_accuracy"}
    assert set(snap.meta["sources"]) <= probed
    report = report_of(store, BASE)
    assert snap.meta["study"]["top_k"] is None and report.n_ranked == len(snap.meta["sources"])  # every candidate
    assert report.probe is not None and report.validity is not None
    assert report.validity.fe_total == 3 * (len(snap.meta["sources"]) + 1)  # 3 replicates: every candidate, the base
    assert report.dropout is not None and report.dropout.difference.n > 0
    assert report.label_savings is not None and len(report.label_savings) >= 1


# --- issue 17's acceptance, on the committed snapshot ------------------------------------------------------------


@pytest.fixture(scope="module")
def protocol_runs(store) -> tuple[str, list]:
    """The ranked intertraining protocol's hash and its target runs (every status)."""
    board = load_leaderboard(store, BASE)
    chosen = board.config_hashes["intertraining"]
    runs = [s for s in store.scores(base_id=BASE) if s.scorer == "intertraining" and s.metric == "target_score"
            and s.config_hash == chosen]
    return chosen, runs


@pytest.mark.parametrize("include_seen", [False, True])
def test_no_failed_run_enters_a_mean(store, include_seen):
    """Take every failed run out of the scores: no mean, interval, cell or seed count of the board moves."""
    data = read_board(store, BASE)
    full = leaderboard_from(data, include_seen=include_seen)
    ok = replace(data, scores=data.scores[data.scores["status"] != "failed"])
    without = leaderboard_from(ok, config_hashes=full.config_hashes, include_seen=include_seen)
    columns = [c for c in full.rows.columns if c.startswith(("gain:", "score:")) or c in (
        "mean_gain", "gain_ci_low", "gain_ci_high", "mean_score", "n_seeds", "beats_base", "repo_id")]
    assert len(full.rows) and columns
    pd.testing.assert_frame_equal(full.rows[columns].reset_index(drop=True),
                                  without.rows[columns].reset_index(drop=True))


def test_failed_runs_are_stored_and_counted_where_the_report_says(store, protocol_runs):
    _, runs = protocol_runs
    failed = [s for s in runs if s.status == "failed"]
    assert all(payload_of(s).failure for s in failed)  # each carries its reasons
    report = report_of(store, BASE)
    assert report.runs.base_failed + report.runs.candidate_failed == len(failed)
    assert report.runs.base_runs + report.runs.candidate_runs == len(runs)


def test_no_candidate_run_reproduces_a_base_run(protocol_runs):
    """A candidate's run identical to the base's run on that target (same test and eval score, same training
    losses) is a seed artefact, not a measurement: none is left among the ok runs."""
    _, runs = protocol_runs

    def fingerprint(s):
        p = payload_of(s)
        return s.target, s.value, p.eval_score, p.loss_start, p.loss_end

    base = {fingerprint(s) for s in runs if s.repo_id == BASE}
    candidates = [s for s in runs if s.repo_id != BASE and s.status == "ok"]
    assert candidates and not [s for s in candidates if fingerprint(s) in base]


def test_every_kept_target_has_the_base_well_above_the_majority_class(store, protocol_runs):
    chosen, runs = protocol_runs
    protocols = target_protocols(store.scores(base_id=BASE), BASE, chosen)
    kept = [t for t in protocols if t.lr is not None]
    assert kept and {t.target for t in kept} == set(load_leaderboard(store, BASE).targets)
    for t in kept:
        assert t.majority_rate is None or t.base_mean >= t.majority_rate + 0.10, t
    assert all(t.reason for t in protocols if t.lr is None)
    base_runs = [s for s in runs if s.repo_id == BASE and s.target in {t.target for t in kept}]
    assert base_runs and all(s.status == "ok" for s in base_runs)  # the chosen rate is one no base seed fails at


def test_every_candidate_rests_on_five_paired_seeds_on_every_target_it_was_not_trained_on(store):
    """Issue 29's design: >= 5 paired seeds per (candidate, target) cell, an interval on >= 2 df for every one."""
    board = load_leaderboard(store, BASE)
    ranked = board.rows.dropna(subset=["mean_gain"])
    assert len(board.targets) == 4 and len(ranked) == len(board.rows)
    assert (ranked["n_seeds"] >= 5).all() and (ranked["gain_df"] >= 2).all()
    assert ranked["gain_ci_low"].notna().all() and ranked["gain_ci_high"].notna().all()


def test_every_source_was_checked_and_no_source_row_shares_text_with_a_target(store):
    meta = read_snapshot(DEFAULT_SNAPSHOT).meta
    checks = meta["source_checks"]
    assert len(checks) == 12 and {c["status"] for c in checks} <= {"ok", "rejected"}
    assert all(c["remaining_overlap"] == 0 for c in checks)
    assert all(c["reason"] for c in checks if c["status"] == "rejected")
    ok = {c["repo_id"] for c in checks if c["status"] == "ok"}
    assert ok == set(meta["sources"])  # a rejected source is never a candidate
    assert ok | {BASE} == set(meta["checkpoints"])  # every checkpoint whose scores the snapshot holds has its sha256
    kept = load_leaderboard(store, BASE).targets
    for a in kept:  # no two targets built from the same text
        for b in kept:
            assert a == b or meta["target_overlap"][f"{a}|{b}"] == 0, (a, b)


def test_every_kept_run_was_checked(protocol_runs):
    _, runs = protocol_runs
    payloads = [payload_of(s) for s in runs]
    assert runs and all(p.loss_start is not None and p.loss_end is not None for p in payloads)
    for s, p in zip(runs, payloads, strict=True):
        assert (s.status == "failed") == bool(p.failure)


# --- issue 30's acceptance, on the committed snapshot ------------------------------------------------------------


@pytest.fixture(scope="module")
def free_energies() -> list:
    """Every free-energy estimate of the snapshot: one F score per (model, replicate)."""
    return [s for s in read_snapshot(DEFAULT_SNAPSHOT).scores
            if s.scorer == "free_energy" and s.metric == "free_energy"]


def test_every_model_has_three_free_energy_replicates_of_one_protocol(free_energies):
    snap = read_snapshot(DEFAULT_SNAPSHOT)
    models = set(snap.meta["sources"]) | {BASE}
    assert {(s.repo_id, s.seed) for s in free_energies} == {(m, r) for m in models for r in range(3)}
    assert len({s.config_hash for s in free_energies}) == 1  # a redo leaves the older protocol out


def test_every_free_energy_carries_the_gates_figures_and_its_verdict(free_energies):
    from scoring.config import ConvergenceGate
    from scoring.llc_gate import critical_failure

    gate = ConvergenceGate()
    for s in free_energies:
        run = payload_of(s)
        assert run.sampled == "last_block" and run.head_converged is not None and run.unigram_ce is not None
        assert None not in (run.mc_se, run.half_gap, run.burnin_relaxations, run.r_hat, run.acceptance)
        assert run.burnin_relaxations >= gate.min_burnin_relaxations
        assert (s.status == "ok") == (not run.gate), s.repo_id  # failed: stored with its reasons, never ok
        if s.status == "ok":  # what the gate let through meets every threshold it states
            assert run.r_hat <= gate.max_r_hat and run.acceptance >= gate.min_acceptance
            assert run.mc_se <= gate.max_rel_se * sum(run.per_chain) / len(run.per_chain)
            assert abs(run.half_gap) <= gate.max_half_gap and critical_failure(run, gate) is None
    halved = [payload_of(s) for s in free_energies if s.repo_id == BASE and s.seed == 0]
    assert halved[0].halving_llc is not None and halved[0].halving_gap is not None  # the ε-halving check ran


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        seeded = Store(Path(tmp) / "lb.db")
        seed_store(seeded, DEFAULT_SNAPSHOT)
        block = readme_block(seeded)
    text = README.read_text()
    assert len(MARKERS.findall(text)) == 1
    README.write_text(MARKERS.sub(lambda _: f"<!-- study-report:start -->\n{block}\n<!-- study-report:end -->", text))
    print(f"README's study block rewritten from {DEFAULT_SNAPSHOT.name} ({len(block.splitlines())} lines)")
