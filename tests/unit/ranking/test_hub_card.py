"""A model's scores in the Hub's .eval_results format (read back by huggingface_hub's own parser) and its model-card
section, on the small store with known answers (tests/helpers/leaderboard_store.py)."""

from __future__ import annotations

import pytest
import yaml
from huggingface_hub._eval_results import parse_eval_result_entries

from ranking.hub_card import HUB_DATASETS, hub_card
from tests.helpers.boards import load_leaderboard
from tests.helpers.leaderboard_store import BASE, build_store

URL = "http://127.0.0.1:7860/?base=org/base&source=project"
DATASETS = {"sst2": ("stanfordnlp/sst2", "default")}  # trec: no Hub dataset here


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    return load_leaderboard(build_store(tmp_path_factory.mktemp("card") / "lb.db"), BASE)


def test_the_eval_results_yaml_round_trips_through_huggingface_hubs_parser(board):
    card = hub_card(board, "alice/strong", date="2026-12-07", url=URL, datasets=DATASETS)
    [entry] = parse_eval_result_entries(yaml.safe_load(card.yaml()))
    assert (entry.dataset_id, entry.task_id, entry.value) == ("stanfordnlp/sst2", "default", 90.0)  # its sst2 run
    assert entry.date == "2026-12-07" and entry.source_url == URL and "fine-tuning this checkpoint" in entry.notes
    assert card.left_out == ("trec",)


def test_the_card_section_says_its_rank_among_the_models_with_a_mean_gain(board):
    alice = hub_card(board, "alice/strong", date="2026-12-07", url=URL, datasets=DATASETS).section
    assert "Ranked **1 of 4** as a starting point for fine-tuning **org/base**" in alice  # dave/partial: no gain
    assert "+6.00 points over the base" in alice and "as of 2026-12-07" in alice
    carol = hub_card(board, "carol/weak", date="2026-12-07", url=URL, datasets=DATASETS).section
    assert "Ranked **4 of 4**" in carol and "-14.00 points" in carol
    partial = hub_card(board, "dave/partial", date="2026-12-07", url=URL, datasets=DATASETS).section
    assert "Not ranked" in partial
    base = hub_card(board, BASE, date="2026-12-07", url=URL, datasets=DATASETS).section
    assert "base model of its leaderboard: 4 checkpoints" in base


def test_an_unknown_model_is_refused(board):
    with pytest.raises(KeyError, match="nobody/nothing is not on the org/base leaderboard"):
        hub_card(board, "nobody/nothing", date="2026-12-07", url=URL)


def test_every_published_target_with_a_hub_dataset_has_its_id():
    assert HUB_DATASETS["sst2"][0] and HUB_DATASETS["mnli"][0] and len(HUB_DATASETS) >= 30


def test_the_card_command_writes_the_yaml_into_the_model_folder_and_prints_the_section(tmp_path, capsys):
    from ranking.__main__ import main

    db = tmp_path / "lb.db"
    build_store(db)
    assert main(["card", "--base", BASE, "--model", "alice/strong", "--out-dir", str(tmp_path / "repo"),
                 "--db", str(db)]) == 0
    out = capsys.readouterr()
    assert "Ranked **1 of 4**" in out.out and "left out (no Hub dataset): trec" in out.err
    written = yaml.safe_load((tmp_path / "repo" / ".eval_results" / "model-recycling-leaderboard.yaml").read_text())
    assert [e.dataset_id for e in parse_eval_result_entries(written)] == [HUB_DATASETS["sst2"][0]]
    assert main(["card", "--base", BASE, "--model", "nobody/nothing", "--db", str(db)]) == 1
    assert "nobody/nothing is not on the org/base leaderboard" in capsys.readouterr().err
