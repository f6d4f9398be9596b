"""Column specs: every column's display rounding (exports keep full precision)."""

from __future__ import annotations

import pytest

from ranking.columns import board_columns, column_for, format_value, interval_text


def test_each_number_is_shown_to_the_precision_it_means():
    assert {key: column_for(key).decimals for key in ("free_energy", "llc_mean", "llc_std", "init_loss")} == {
        "free_energy": 1, "llc_mean": 2, "llc_std": 2, "init_loss": 3}
    assert column_for("gain:sst2").decimals == 2 and column_for("score:sst2").decimals == 2
    assert {column_for(key).fmt for key in ("n_targets", "downloads", "likes", "num_params", "labels_saved")} == {"int"}


@pytest.mark.parametrize(("value", "fmt", "decimals", "text"), [
    (330.336585, "num", 1, "330.3"), (64.129316, "num", 2, "64.13"), (1234.5678, "num", 1, "1,234.6"),
    (330.336585, "num", None, "330.3"), (0.012345, "pts", None, "+1.23"), (0.012345, "pts", 1, "+1.2"),
    (0.7812, "pct", 1, "78.1"), (1234.6, "int", None, "1,235"), (None, "num", 1, ""), (float("nan"), "pct", 2, ""),
])
def test_format_value_takes_a_columns_decimals(value, fmt, decimals, text):
    assert format_value(value, fmt, decimals) == text


def test_the_gain_interval_as_text_says_why_there_is_none():
    assert interval_text(0.001, 0.0234) == "95% CI +0.10 to +2.34"
    assert interval_text(-0.004, 0.029, df=8, n_seeds=5) == "95% CI -0.40 to +2.90; n = 5 seeds, df = 8"
    assert interval_text(float("nan"), float("nan"), df=1.0, n_seeds=2) == "n = 2 seeds, df = 1: no interval"
    assert interval_text(None, None, df=0) == "df = 0: no interval"
    assert interval_text(None, None, n_seeds=1) == "n = 1 seed: no interval"
    assert interval_text(None, None, df=float("nan"), n_seeds=2) == "n = 2 seeds: no interval"
    assert interval_text(float("nan"), float("nan")) == "no interval"
    assert interval_text(0.01, 0.02, df=8.6372) == "95% CI +1.00 to +2.00; df = 8.6"  # Welch–Satterthwaite's


def test_the_degrees_of_freedom_column_sits_beside_seeds_and_says_the_rule():
    keys = [c.key for c in board_columns()]
    assert keys.index("gain_df") == keys.index("n_seeds") + 1 and column_for("gain_df").fmt == "num"
    assert "below 2: no interval" in column_for("gain_df").description
    assert "pooled within targets" in column_for("gain_ci_low").description
