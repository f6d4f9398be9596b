import pytest

from data.metrics import METRICS
from ranking.columns import column_for
from scoring.registry import SCORERS, check_registry, get_scorer


def test_every_scorer_imports_names_itself_and_writes_declared_metrics():
    check_registry()
    for name in SCORERS:
        assert get_scorer(name).name == name
        for metric in SCORERS[name].metrics:
            assert metric in METRICS


def test_every_metric_has_a_leaderboard_column():
    for name, spec in SCORERS.items():
        for metric in spec.metrics:
            if metric == "target_score":
                assert column_for("score:sst2").group == "target scores"
            elif metric == "lora_accuracy":  # per (target, n labels): the model page's curve, not a column
                assert _curve_reads(metric), name
            else:
                assert column_for(metric).key == metric, name


def test_unknown_scorer_suggests_close_names():
    with pytest.raises(KeyError, match="did you mean intertraining"):
        get_scorer("intertrainng")


def _curve_reads(metric: str) -> bool:
    """Does the model page's sample-efficiency curve show scores of ``metric``? (A real store, two points.)"""
    import tempfile
    from pathlib import Path

    from data.records import Score
    from data.store import Store
    from ui.model_page import sample_efficiency_points

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "lb.db")
        store.add_scores([Score(repo_id="m/x", revision="r", scorer="sample_efficiency", metric=metric,
                                target=f"sst2@{n}", seed=0, value=v, config_hash="h", extra={"n_labels": n},
                                base_id="b/base")
                          for n, v in ((32, 0.6), (128, 0.8))])
        points = sample_efficiency_points(store, "m/x", "b/base")
    return list(points["n_labels"]) == [32, 128] and list(points["accuracy"]) == [0.6, 0.8]

