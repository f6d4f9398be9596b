"""GET /api/leaderboard without ``source=``: the base's only board is served; a base with several asks which; a
source with no scores names the one that has them."""

from __future__ import annotations

import pytest

from data.records import Score
from tests.helpers.leaderboard_store import BASE, build_store

ROBERTA = "FacebookAI/roberta-base"


@pytest.fixture
def client(tmp_path, settings):
    from fastapi.testclient import TestClient

    import app
    from ui.handlers import AppHandlers

    store = build_store(tmp_path / "lb.db")  # BASE's project board
    store.add_scores([Score(repo_id=r, revision="r", scorer="linear_probe", metric="probe_accuracy", target="mnli",
                            value=v, config_hash="h", base_id=ROBERTA, source="published-2023")
                      for r, v in (("a/one", 0.5), ("b/two", 0.6))])
    store.add_scores([Score(repo_id="c/three", revision="r", scorer="linear_probe", metric="probe_accuracy",
                            target="mnli", value=0.4, config_hash="h", base_id=BASE, source="published-2023")])
    return TestClient(app.create_server(store, settings, AppHandlers(store, settings)),
                      raise_server_exceptions=False)


def test_a_base_with_one_board_is_served_without_naming_its_source(client):
    response = client.get("/api/leaderboard", params={"base": "roberta-base"})
    assert response.status_code == 200, response.text
    assert {row["repo_id"] for row in response.json()["rows"]} >= {"a/one", "b/two"}


def test_a_base_with_two_boards_asks_which(client):
    response = client.get("/api/leaderboard", params={"base": BASE})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "2 leaderboards" in detail and "source=project" in detail and "source=published-2023" in detail


def test_an_empty_source_names_the_one_that_has_scores(client):
    response = client.get("/api/leaderboard", params={"base": ROBERTA, "source": "project"})
    assert response.status_code == 404
    assert response.json()["detail"] == f"no project scores for {ROBERTA}; its scores are under source=published-2023"
    unknown = client.get("/api/leaderboard", params={"base": "nobody/nothing"})
    assert unknown.status_code == 404 and unknown.json()["detail"] == "no project scores for nobody/nothing"
