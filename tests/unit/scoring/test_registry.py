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
                from ui.model_page import sample_efficiency_points

                assert sample_efficiency_points.__doc__
            else:
                assert column_for(metric).key == metric, name


def test_unknown_scorer_suggests_close_names():
    with pytest.raises(KeyError, match="did you mean intertraining"):
        get_scorer("intertrainng")
