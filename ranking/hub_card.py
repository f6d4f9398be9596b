"""Scores given back to the Hub: one model's results in the Hub's ``.eval_results/*.yaml`` format, and a model-card
section a user can paste. Pure functions of a built leaderboard.

The entries are huggingface_hub's own ``EvalResultEntry`` (https://huggingface.co/docs/hub/eval-results): one per
suite target whose dataset is on the Hub, ``value`` the model's score after fine-tuning on that target (×100, its
mean over seeds; the base's entries are the base fine-tuned alike), ``notes`` saying so, since the Hub reads a value
as the model's own score on the benchmark. A target with no Hub dataset (a local one) is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import yaml
from huggingface_hub import EvalResultEntry, eval_result_entries_to_yaml

from data.escape import markdown_text
from data.targets import PUBLISHED_SUITE
from ranking.columns import format_value
from ranking.leaderboard import Leaderboard

# target -> (Hub dataset id, task id) for the targets whose dataset is on the Hub
HUB_DATASETS: dict[str, tuple[str, str]] = {
    spec.name: (spec.hub_id, spec.hub_config or spec.name) for spec in PUBLISHED_SUITE if spec.hub_id}


@dataclass(frozen=True, slots=True)
class HubCard:
    entries: tuple[EvalResultEntry, ...]
    left_out: tuple[str, ...]  # suite targets scored but with no Hub dataset
    section: str  # markdown for the model card

    def yaml(self) -> str:
        return yaml.safe_dump(eval_result_entries_to_yaml(list(self.entries)), sort_keys=False, allow_unicode=True)


def hub_card(board: Leaderboard, repo_id: str, *, date: str, url: str,
             datasets: Mapping[str, tuple[str, str]] = HUB_DATASETS) -> HubCard:
    """The card of ``repo_id`` on ``board`` as of ``date`` (ISO 8601); ``url``: where the leaderboard is.
    Raises KeyError when the model is not on the board."""
    frame = board.to_frame()
    hits = frame[frame["repo_id"] == repo_id]
    if hits.empty:
        raise KeyError(f"{repo_id} is not on the {board.base_id} leaderboard ({board.source})")
    row = hits.iloc[0]
    entries, left_out = [], []
    for target in board.suite:
        value = row.get(f"score:{target}")
        if value is None or pd.isna(value):
            continue
        if target not in datasets:
            left_out.append(target)
            continue
        dataset_id, task_id = datasets[target]
        entries.append(EvalResultEntry(
            dataset_id=dataset_id, task_id=task_id, value=round(float(value) * 100, 2), date=date, source_url=url,
            source_name="Model Recycling Leaderboard",
            notes=f"accuracy after fine-tuning this checkpoint on {target} (intertraining, {board.source} runs)"))
    return HubCard(entries=tuple(entries), left_out=tuple(left_out), section=card_section(board, row, date, url))


def card_section(board: Leaderboard, row: pd.Series, date: str, url: str) -> str:
    """"Ranked N of M as a starting point for <base>, as of <date>", with the mean gain and its interval."""
    base = markdown_text(board.base_id)
    ranked = int(board.rows["mean_gain"].notna().sum()) if "mean_gain" in board.rows else 0
    head = "## As a starting point for fine-tuning\n\n"
    link = f"([Model Recycling Leaderboard]({url}), as of {date})"
    if bool(row.get("is_baseline")):
        return (f"{head}The base model of its leaderboard: {ranked} checkpoints fine-tuned from it are ranked "
                f"against it {link}.\n")
    gain = row.get("mean_gain")
    if gain is None or pd.isna(gain):
        return (f"{head}Not ranked as a starting point for **{base}**: its mean gain over the base is not measured "
                f"on every target {link}.\n")
    rank = int((board.rows["mean_gain"] > gain).sum()) + 1
    low, high = row.get("gain_ci_low"), row.get("gain_ci_high")
    interval = (f" (95% interval {format_value(low, 'pts')} to {format_value(high, 'pts')})"
                if low is not None and pd.notna(low) and high is not None and pd.notna(high) else "")
    return (f"{head}Ranked **{rank} of {ranked}** as a starting point for fine-tuning **{base}**: fine-tuned on "
            f"{len(board.suite)} target datasets, it scores {format_value(gain, 'pts')} points over the base on "
            f"average{interval} {link}.\n")
