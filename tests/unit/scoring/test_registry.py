"""The registry is the only way a scorer exists, and every scorer's protocol hash means what it says."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import fields, is_dataclass, replace

import pytest

from data.metrics import METRICS
from data.settings import Settings
from ranking.columns import column_for
from ranking.leaderboard import Leaderboard
from scoring import registry
from scoring.config import REPLICATE_FIELDS
from scoring.registry import SCORERS, ScorerSpec

DATA = [["cats", "a" * 40], ["dogs", "b" * 40]]


def test_every_registered_scorer_declares_its_name_config_stage_and_metrics():
    assert set(SCORERS) == {"intertraining", "free_energy", "sample_efficiency", "knn", "linear_probe", "cv_probe",
                            "cv_knn", "logme"}
    for name, spec in SCORERS.items():
        cls = registry.scorer_class(name)
        assert cls.name == name and spec.stage in ("prefilter", "full", "personal")
        assert is_dataclass(cls.config_type) and cls.config_type.__dataclass_params__.frozen, name
        assert cls.config_type.__module__ == "scoring.config", f"{name}'s config lives outside scoring/config.py"
        assert all(METRICS[m.key] == m for m in spec.metrics)
        scorer = registry.build(name, Settings())
        assert type(scorer) is cls and isinstance(scorer.cfg, cls.config_type)
    assert [n for n in SCORERS if registry.is_prefilter(n)] == ["linear_probe"]
    assert registry.personal() == ["cv_probe", "cv_knn", "logme"]
    assert set(registry.queued()) == set(SCORERS) - set(registry.personal())


@pytest.mark.parametrize("name", registry.personal())
def test_a_personal_estimators_protocol_holds_every_config_field_and_the_data(name):
    config = registry.scorer_class(name).config_for(Settings())
    reference = registry.build(name, Settings(), config=config).protocol(DATA).hash
    for path in _leaf_paths(config):
        other = registry.build(name, Settings(), config=_with_changed(config, path)).protocol(DATA).hash
        assert (other == reference) == (path[-1] in REPLICATE_FIELDS), f"{name}: {'.'.join(path)}"
    assert registry.build(name, Settings(), config=config).protocol([["user", "f" * 64]]).hash != reference


def test_registering_a_name_twice_raises_and_leaves_the_first():
    first = SCORERS["free_energy"]
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(ScorerSpec("free_energy", "x:Y", "full", (METRICS["free_energy"],), "a second one"))
    assert SCORERS["free_energy"] is first


def test_a_bad_registration_says_what_is_wrong():
    probe = METRICS["probe_accuracy"]
    with pytest.raises(ValueError, match="stage must be"):
        registry.register(ScorerSpec("new_one", "x:Y", "later", (probe,), ""))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="declares no metrics"):
        registry.register(ScorerSpec("new_one", "x:Y", "full", (), ""))
    fresh = dataclasses.replace(probe, key="new_metric", group="no such group")
    with pytest.raises(ValueError, match="group one of"):
        registry.register(ScorerSpec("new_one", "x:Y", "full", (fresh,), ""))
    with pytest.raises(ValueError, match="unlike its first declaration"):  # a metric means one thing
        twice = (dataclasses.replace(probe, key="other"), dataclasses.replace(probe, fmt="num"))
        registry.register(ScorerSpec("new_one", "x:Y", "full", twice, ""))
    assert "new_one" not in SCORERS and "other" not in METRICS and "new_metric" not in METRICS


def test_unknown_scorer_suggests_close_names():
    with pytest.raises(KeyError, match="did you mean intertraining"):
        registry.build("intertrainng", Settings())
    assert registry.unknown(["free_energy", "free_enrgy"]) == ["free_enrgy"]


def test_a_config_of_the_wrong_type_is_refused():
    from scoring.config import FreeEnergyConfig

    with pytest.raises(TypeError, match="takes a LinearProbeConfig, got FreeEnergyConfig"):
        registry.build("linear_probe", Settings(), config=FreeEnergyConfig())


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_the_settings_a_scorer_declares_are_the_settings_it_reads(name):
    cls = registry.scorer_class(name)
    default = cls.config_for(Settings())
    for f in fields(Settings):
        changed = cls.config_for(_changed_settings(f.name))
        if f.name in cls.settings_fields:
            assert changed != default, f"{name} declares {f.name} but does not read it"
        else:
            assert changed == default, f"{name} reads Settings.{f.name} without declaring it"


@pytest.mark.parametrize("name", sorted(registry.queued()))
def test_every_config_field_and_the_data_change_the_protocol_hash_and_seeds_do_not(name):
    cls = registry.scorer_class(name)
    config = cls.config_for(Settings())
    reference = registry.build(name, Settings(), config=config).protocol(DATA).hash
    paths = list(_leaf_paths(config))
    assert len(paths) >= 4, f"{name}: too few config fields found to test"
    for path in paths:
        other = registry.build(name, Settings(), config=_with_changed(config, path)).protocol(DATA).hash
        if path[-1] in REPLICATE_FIELDS:
            assert other == reference, f"{name}: the replicate field {'.'.join(path)} changed the protocol"
        else:
            assert other != reference, f"{name}: {'.'.join(path)} is not part of the protocol"
    assert any(p[-1] == "seed" for p in paths), f"{name} has no seed to check"
    moved = [DATA[0], ["dogs", "c" * 40]]  # one dataset at another revision
    assert registry.build(name, Settings(), config=config).protocol(moved).hash != reference


def test_the_protocol_is_canonical_json_whose_sha256_is_the_hash():
    import hashlib
    import json

    proto = registry.build("linear_probe", Settings()).protocol(DATA)
    assert hashlib.sha256(proto.json.encode()).hexdigest() == proto.hash
    doc = json.loads(proto.json)
    assert doc["scorer"] == "linear_probe" and doc["data"] == DATA and "seed" not in doc["config"]["probe"]
    assert json.dumps(doc, sort_keys=True, separators=(",", ":")) == proto.json


def test_every_metric_a_board_shows_has_a_column_with_its_direction_format_and_decimals():
    """A column's direction, format and decimals are its metric's: a summary metric is one column, the
    per-target columns are target_score's and intertraining_gain's; the metrics stored only are named."""
    for m in METRICS.values():
        if m.board == "summary":
            column = column_for(m.key)
        elif m.board == "target":
            column = column_for(("score:" if m.key == "target_score" else "gain:") + "sst2")
        else:
            continue
        assert (column.higher_is_better, column.fmt, column.decimals) == (m.higher_is_better, m.fmt, m.decimals), m.key
    stored_only = {m.key for name in registry.queued() for m in SCORERS[name].metrics if m.board is None}
    # lr_choice: a dropped target is named under the board; lora_accuracy: the model page's curve;
    # weight_distance: the study's validity table
    assert stored_only == {"lr_choice", "lora_accuracy", "weight_distance"}
    assert "dropped" in {f.name for f in fields(Leaderboard)} and _curve_reads("lora_accuracy")


def test_the_sort_direction_of_every_column_is_its_declaration():
    from ranking.columns import board_columns
    from ranking.leaderboard import direction

    for column in board_columns():
        if column.higher_is_better is None:
            with pytest.raises(KeyError, match="no declared direction"):
                direction(column.key)
        else:
            assert direction(column.key) is column.higher_is_better, column.key
            if column.key in METRICS:
                assert column.higher_is_better is METRICS[column.key].higher_is_better, column.key


def _leaf_paths(config, prefix=()):
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            yield from _leaf_paths(value, (*prefix, f.name))
        else:
            yield (*prefix, f.name)


def _with_changed(config, path):
    head, *rest = path
    value = getattr(config, head)
    if rest:
        return replace(config, **{head: _with_changed(value, rest)})
    hint = typing.get_type_hints(type(config))[head]
    try:
        return replace(config, **{head: _other_value(value, hint)})
    except ValueError:  # e.g. micro_batch_size must divide batch_size: a smaller value then
        return replace(config, **{head: value // 2})


def _other_value(value, hint):
    """A different valid value of the same field."""
    choices = [a for a in typing.get_args(hint) if isinstance(a, str)]
    if typing.get_origin(hint) is typing.Literal:
        return next(c for c in choices if c != value)
    if isinstance(value, bool):
        return not value
    if value is None:
        return 1.0 if float in typing.get_args(hint) else 1
    if isinstance(value, int | float):
        return value * 2 if value else type(value)(1) / (2 if isinstance(value, float) else 1)
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, tuple):
        return (*value, value[-1] * 2) if value else (typing.get_args(hint)[0](1),)
    raise AssertionError(f"no other value for {value!r} ({hint})")


def _changed_settings(field_name):
    value = getattr(Settings(), field_name)
    hint = typing.get_type_hints(Settings)[field_name]
    if isinstance(value, tuple):
        return replace(Settings(), **{field_name: (*value, "x")})
    if dataclasses.is_dataclass(value) or value is None or hasattr(value, "parts"):
        return replace(Settings(), **{field_name: type(value)("elsewhere") if value is not None else None})
    return replace(Settings(), **{field_name: _other_value(value, hint)})


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
