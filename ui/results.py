"""What the page's handlers return (ui/handlers.py), one frozen dataclass per view, read by field in ui/events.py:
no dict passes between them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go


@dataclass(frozen=True, slots=True)
class BoardControls:
    """The choices that depend on the board shown."""

    sources: list[str]
    licenses: list[str]
    sort: list[tuple[str, str]]  # (label, column key)
    models: list[str]
    sizes: list[tuple[str, str]]  # (label with its count, bucket)
    empty_filters: dict[str, str]  # filter -> what this board lacks (the filter is hidden)
    top_model: str | None  # the model page opens on it


@dataclass(frozen=True, slots=True)
class ModelPage:
    header: str
    gains: go.Figure
    free_energy: str
    chains: pd.DataFrame
    dropout: pd.DataFrame
    sample_efficiency: go.Figure
    revisions: pd.DataFrame
    share: str


@dataclass(frozen=True, slots=True)
class Comparison:
    header: str
    gains: go.Figure
    table: pd.DataFrame
    datatypes: list[str]
    widths: list[str]
    share: str


@dataclass(frozen=True, slots=True)
class StudyPanel:
    """The offline study's report (Markdown) and its source x target gain matrix; empty text when none."""

    study: str
    study_matrix: go.Figure


@dataclass(frozen=True, slots=True)
class InsightsPanels:
    free_energy: go.Figure
    free_energy_text: str
    probe: go.Figure
    probe_text: str
    heatmap: go.Figure
    beats_base: go.Figure
    study: StudyPanel
    has_free_energy: bool  # panels with data: the others are hidden
