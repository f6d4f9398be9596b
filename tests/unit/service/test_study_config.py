"""The study's configuration: what it trains and scores, read without training anything."""

from __future__ import annotations

from dataclasses import replace

from scoring.reference_corpus import corpus_documents
from service.study import StudyConfig
from tests.helpers.tiny_suite import RULES, write_tiny_suite


def test_the_free_energy_corpus_holds_no_target_text(tmp_path):
    root = write_tiny_suite(tmp_path / "suite", n_train=10, n_test=4)
    names = sorted(RULES)
    cfg = StudyConfig(targets=names[0])
    fe = cfg.free_energy_config(root)
    assert fe.corpus == "local:" + ",".join(names[1:])
    docs, _ = corpus_documents(fe.corpus, local_root=root)
    target_text = {line.rsplit(",", 1)[0] for line in (root / names[0] / "train.csv").read_text().splitlines()[1:]}
    assert docs and not target_text & set(docs)
    given = replace(cfg, free_energy=replace(cfg.free_energy, corpus="/data/wiki.txt"))
    assert given.free_energy_config(root).corpus == "/data/wiki.txt"  # a corpus chosen by hand is kept


def test_the_default_study_is_issue_29s_design():
    """Every source a candidate, sst2 and trec then two more targets by the sweep, 5 paired seeds per cell."""
    cfg = StudyConfig()
    it = cfg.intertraining()
    assert it.lrs == (1e-4, 3e-4) and it.finetune.min_steps == 120
    assert (it.base_seeds, it.candidate_seeds, it.max_targets) == (5, 5, 4) and cfg.top_k is None
    assert it.suite.split(",")[:2] == ["sst2", "trec"] and "subj" not in it.suite  # subj shares sst2's text
    guided = cfg.intertraining(guided=True)
    assert guided.finetune.dropout == "guided" and guided.base_seeds == guided.candidate_seeds == 2
