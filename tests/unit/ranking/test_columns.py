"""Column specs: every column's display rounding (exports keep full precision)."""

from __future__ import annotations

import pytest

from ranking.columns import FIXED, column_for, format_value


def test_each_number_is_shown_to_the_precision_it_means():
    assert {key: FIXED[key].decimals for key in ("free_energy", "llc_mean", "llc_std", "init_loss")} == {
        "free_energy": 1, "llc_mean": 2, "llc_std": 2, "init_loss": 3}
    assert column_for("gain:sst2").decimals == 2 and column_for("score:sst2").decimals == 2
    assert {FIXED[key].fmt for key in ("n_targets", "downloads", "likes", "num_params", "labels_saved")} == {"int"}


@pytest.mark.parametrize(("value", "fmt", "decimals", "text"), [
    (330.336585, "num", 1, "330.3"), (64.129316, "num", 2, "64.13"), (1234.5678, "num", 1, "1,234.6"),
    (330.336585, "num", None, "330.3"), (0.012345, "pts", None, "+1.23"), (0.012345, "pts", 1, "+1.2"),
    (0.7812, "pct", 1, "78.1"), (1234.6, "int", None, "1,235"), (None, "num", 1, ""), (float("nan"), "pct", 2, ""),
])
def test_format_value_takes_a_columns_decimals(value, fmt, decimals, text):
    assert format_value(value, fmt, decimals) == text
