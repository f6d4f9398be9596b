"""A scorer is declared once: a new one, added as tests/helpers/fixture_scorer.py (one module) plus its registration,
is queued and run by the real worker, and its metric appears on the board (sortable in its declared direction),
in the CSV export, among the page's columns and on the model page, with no other file changed."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from data.metrics import METRICS, SCORERS, register, unregister
from data.records import ArchSignature, BaseModel
from data.settings import Settings
from data.store import Store
from ranking.columns import DEFAULT_GROUPS, column_for, columns_in
from ranking.export import render
from ranking.leaderboard import leaderboard_from
from service.boards import read_board
from service.worker import Worker
from tests.helpers.fixture_scorer import SPEC
from tests.helpers.store_procs import sha_of
from ui.model_page import header_markdown

BASE = "org/base"
LAYERS = {BASE: 2, "org/deep": 6, "org/shallow": 1}


@pytest.fixture
def registered():
    register(SPEC)
    yield SPEC
    unregister(SPEC.name)


@pytest.fixture
def scored(registered, tmp_path):
    """A store whose base and two candidates were scored by the fixture scorer through the real worker."""
    store = Store(tmp_path / "lb.db")
    store.upsert_base(BaseModel(repo_id=BASE, sha=sha_of("base"), aliases=(BASE,),
                                signature=ArchSignature(model_type="bert", hidden_size=32, num_hidden_layers=2,
                                                        num_attention_heads=2, vocab_size=205)))
    dirs = {}
    for repo_id, layers in LAYERS.items():
        dirs[repo_id] = tmp_path / "models" / repo_id
        dirs[repo_id].mkdir(parents=True)
        (dirs[repo_id] / "config.json").write_text(json.dumps({"model_type": "bert", "num_hidden_layers": layers}))
        store.queue.enqueue(repo_id, sha_of("base") if repo_id == BASE else sha_of(repo_id), [SPEC.name], BASE)
    worker = Worker(store, Settings(db_path=tmp_path / "lb.db"), scorers=[SPEC.name],
                    snapshot=lambda ref: dirs[ref.repo_id])
    report = worker.run(once=True, poll_s=0.01)
    assert (report.done, report.failed) == (3, 0)
    return store


def test_a_new_scorers_metric_is_on_the_board_in_the_csv_and_on_the_model_page(scored):
    board = leaderboard_from(read_board(scored, BASE, "project"), sort_by="layer_count")
    shown = dict(zip(board.rows["repo_id"], board.rows["layer_count"], strict=True))
    assert shown == {"org/deep": 6.0, "org/shallow": 1.0} and board.baseline["layer_count"].iloc[0] == 2.0
    assert list(board.rows["repo_id"]) == ["org/shallow", "org/deep"]  # declared lower-is-better: 1 ranks first
    assert list(board.rows["rank"]) == [1, 2]
    column = column_for("layer_count")
    assert (column.label, column.fmt, column.higher_is_better) == ("layers", "int", False)
    assert "layer_count" in [c.key for c in columns_in(board.rows.columns, DEFAULT_GROUPS)]  # the page's table
    csv = pd.read_csv(io.BytesIO(render(board, "csv")))
    assert list(csv.columns).index("layer_count") == list(csv.columns).index("labels_saved") + 1
    assert dict(zip(csv["repo_id"], csv["layer_count"], strict=True)) == {BASE: 2, "org/shallow": 1, "org/deep": 6}
    row = board.rows[board.rows["repo_id"] == "org/deep"].iloc[0]
    assert "| encoder layers | 6 |" in header_markdown(board, row, "org/deep")


def test_unregistered_the_scorer_leaves_no_column_and_no_metric(scored):
    unregister(SPEC.name)
    try:
        assert "layer_count" not in METRICS and "layer_count" not in SCORERS
        board = leaderboard_from(read_board(scored, BASE, "project"))
        assert "layer_count" not in board.rows.columns
        with pytest.raises(KeyError):
            column_for("layer_count")
    finally:
        register(SPEC)  # the fixture unregisters it
