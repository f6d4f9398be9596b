"""A bad ``MRL_*`` value ends every entry point the same way: one line ``error: <sentence naming the variable>`` on
stderr, exit code 2, no traceback and no store created (python app.py | -m scoring | -m ranking; python -m data in
tests/unit/data/test_settings_env.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

SENTENCE = "error: MRL_TOP_K must be a whole number, got 'zero'"


def _assert_refused(main, argv: list[str], db: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MRL_TOP_K", "zero")
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [SENTENCE]
    assert not db.exists()


def test_app_reports_a_bad_variable_in_one_line(monkeypatch, capsys, tmp_path):
    from app import main

    db = tmp_path / "app.db"
    _assert_refused(main, ["--db", str(db), "--snapshot", "none", "--published", "none"], db, monkeypatch, capsys)


def test_scoring_reports_a_bad_variable_in_one_line(monkeypatch, capsys, tmp_path):
    from scoring.__main__ import main

    db = tmp_path / "scoring.db"
    _assert_refused(main, ["work", "--once", "--db", str(db)], db, monkeypatch, capsys)


def test_ranking_reports_a_bad_variable_in_one_line(monkeypatch, capsys, tmp_path):
    from ranking.__main__ import main

    db = tmp_path / "ranking.db"
    _assert_refused(main, ["export", "--base", "FacebookAI/roberta-base", "--db", str(db)], db, monkeypatch, capsys)
