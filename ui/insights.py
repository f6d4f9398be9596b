"""Insights for the app: rank correlations with bootstrap intervals, and the plotly figures around them.

Pure functions: no I/O, no gradio, no torch. Frames are ``Leaderboard.to_frame()`` (fractions in natural
units); figures show fractions ×100 as points, as the table does. Plotly renders hover text, tick labels,
legend names and titles as a small subset of HTML, so every string that comes from the Hub (repo ids,
model names) is HTML-escaped before it goes into a figure: ``&lt;img ...&gt;`` shows as text.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from ranking.columns import column_for
from ranking.stats import (  # noqa: F401 (re-exported for the app)
    Correlation,
    as_float,
    correlation_text,
    pearson_with_ci,
    spearman_with_ci,
)
from ranking.study_markdown import render_markdown
from ranking.study_report import StudyReport
from ui.results import StudyPanel

logger = logging.getLogger(__name__)

GAIN_PREFIX = "gain:"
POSITIVE, NEGATIVE, NEUTRAL = "#2166ac", "#b2182b", "#9e9e9e"
_TEMPLATE = go.layout.Template(layout={
    "font": {"family": "sans-serif", "size": 12}, "paper_bgcolor": "white", "plot_bgcolor": "white",
    "colorway": list(qualitative.Plotly), "hovermode": "closest",
    "xaxis": {"gridcolor": "#eeeeee", "zerolinecolor": "#cccccc"},
    "yaxis": {"gridcolor": "#eeeeee", "zerolinecolor": "#cccccc"},
})


def empty_figure(message: str) -> go.Figure:
    """A blank figure that says why it is blank (centred annotation, no axes)."""
    fig = go.Figure()
    fig.add_annotation(text=_escape(message), x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font={"size": 14, "color": "#666666"})
    fig.update_layout(template=_TEMPLATE, xaxis={"visible": False}, yaxis={"visible": False}, height=240,
                      margin={"l": 20, "r": 20, "t": 20, "b": 20})
    return fig


def scatter_vs_gain(frame: pd.DataFrame, x: str, x_label: str) -> tuple[go.Figure, Correlation]:
    """Scatter of column ``x`` against mean gain (points) over candidates having both, titled with Spearman's ρ.

    The base's own row is left out (its gain is 0 by definition). ``x`` is shown as the table shows it
    (fractions ×100 for ``pct``/``pts`` columns); the correlation is on the plotted pairs.
    """
    rows = _candidates(frame)
    xs = _numeric(rows, x) * _display_scale(x)
    gain = _numeric(rows, "mean_gain") * 100
    keep = np.isfinite(xs) & np.isfinite(gain)
    corr = spearman_with_ci(xs[keep], gain[keep])
    if not keep.any():
        return empty_figure(f"no models with both {x_label} and mean gain yet"), corr
    fig = go.Figure(go.Scatter(
        x=xs[keep], y=gain[keep], mode="markers", name="candidates", marker={"size": 7, "opacity": 0.75},
        hovertext=[_escape(r) for r in rows["repo_id"].to_numpy()[keep]],
        hovertemplate=f"%{{hovertext}}<br>{_escape(x_label)}: %{{x:.4g}}<br>mean gain: %{{y:+.2f}} pts<extra></extra>",
    ))
    fig.add_hline(y=0, line={"dash": "dash", "color": NEUTRAL}, annotation_text="base",
                  annotation_position="bottom right")
    subject, _, figures = correlation_text(corr, x_label, "mean gain").partition(": ")
    title = "<br>".join(_escape(part) for part in (subject, figures) if part)  # two lines: a half-width panel fits
    fig.update_layout(template=_TEMPLATE, title={"text": title},
                      xaxis_title=_escape(x_label), yaxis_title="mean gain over the base (points)",
                      showlegend=False, height=420, margin={"l": 60, "r": 20, "t": 80, "b": 50})
    return fig, corr


def pairs_with_gain(frame: pd.DataFrame, x: str) -> tuple[np.ndarray, np.ndarray]:
    """The (column ``x`` as shown, mean gain in points) pairs that ``scatter_vs_gain`` plots."""
    rows = _candidates(frame)
    xs = _numeric(rows, x) * _display_scale(x)
    gain = _numeric(rows, "mean_gain") * 100
    keep = np.isfinite(xs) & np.isfinite(gain)
    return xs[keep], gain[keep]


def gain_heatmap(frame: pd.DataFrame, *, top: int = 30) -> go.Figure:
    """Per-target gains (points) of the ``top`` candidates by rank: rows are models, columns targets."""
    gain_columns = [c for c in frame.columns if c.startswith(GAIN_PREFIX)]
    rows = _candidates(frame)
    if "rank" in rows:
        rows = rows.sort_values("rank", kind="mergesort")
    rows = rows.head(top)
    z = np.column_stack([_numeric(rows, c) for c in gain_columns]) * 100 if gain_columns else np.empty((0, 0))
    if rows.empty or not np.isfinite(z).any():
        return empty_figure("no per-target gains yet")
    labels = _model_labels(rows)
    targets = [_escape(c[len(GAIN_PREFIX):]) for c in gain_columns]
    fig = go.Figure(go.Heatmap(
        z=z, x=targets, y=labels, zmid=0, colorscale="RdBu", colorbar={"title": {"text": "gain (pts)"}},
        hovertemplate="%{y}<br>%{x}: %{z:+.2f} pts<extra></extra>", xgap=1, ygap=1,
    ))
    fig.update_layout(template=_TEMPLATE, title={"text": f"Per-target gain over the base, top {len(rows)} by rank"},
                      yaxis={"autorange": "reversed", "type": "category", "automargin": True},
                      xaxis={"type": "category", "automargin": True, "tickangle": -45},
                      height=260 + 22 * len(rows), margin={"l": 20, "r": 20, "t": 60, "b": 20})
    return fig


def study_gain_matrix(matrix: pd.DataFrame) -> go.Figure:
    """The study's source × target gains (points, as ``ranking.study_report.gain_matrix`` gives them): rows are the
    sources the candidates were fine-tuned on, columns the targets; diverging colours centred at 0, the value in
    each cell, and source = target cells outlined (the additive fit leaves them out)."""
    values = matrix.to_numpy(dtype=np.float64, na_value=np.nan) if not matrix.empty else np.empty((0, 0))
    if not np.isfinite(values).any():
        return empty_figure("no source × target gains yet")
    sources, targets = [_escape(s) for s in matrix.index], [_escape(t) for t in matrix.columns]
    text = [[f"{v:+.1f}".replace("-", "−") if np.isfinite(v) else "" for v in row] for row in values]
    fig = go.Figure(go.Heatmap(
        z=values, x=targets, y=sources, zmid=0, colorscale="RdBu", text=text, texttemplate="%{text}",
        colorbar={"title": {"text": "gain (pts)"}}, xgap=1, ygap=1,
        hovertemplate="source %{y}<br>target %{x}: %{z:+.2f} pts<extra></extra>",
    ))
    lowered = [str(t).lower() for t in matrix.columns]
    for i, source in enumerate(matrix.index):
        if str(source).lower() in lowered:
            j = lowered.index(str(source).lower())
            fig.add_shape(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5,
                          line={"color": "#333333", "width": 2})
    fig.update_layout(template=_TEMPLATE, title={"text": "Gain over the base by source (rows) and target (columns)"},
                      xaxis={"type": "category", "title": {"text": "target"}},
                      yaxis={"type": "category", "autorange": "reversed", "automargin": True,
                             "title": {"text": "source (fine-tuned on)"}},
                      height=200 + 26 * len(sources), margin={"l": 20, "r": 20, "t": 60, "b": 80})
    return fig


def study_view(report: StudyReport, after: str = "") -> StudyPanel:
    """What the Insights tab shows of the offline study, all from the one report: its Markdown, which is the
    README's study block (``ranking.study_markdown.render_markdown``: counts, design, power, sources, intervals,
    validity with its exact p-values, the free energy's reliability over replicates and the published baseline),
    then ``after``, and the source × target figure of the same gain matrix."""
    return StudyPanel(study=render_markdown(report) + after, study_matrix=study_gain_matrix(report.gain_matrix))


def beats_base_bars(summary: Sequence[tuple[str, int, int]]) -> go.Figure:
    """Per base: models with a mean gain, and those beating the base beyond seed noise (with the share)."""
    if not summary:
        return empty_figure("no architectures with mean gains yet")
    bases = [_escape(base_id) for base_id, _, _ in summary]
    beating = [int(b) for _, b, _ in summary]
    with_gain = [int(n) for _, _, n in summary]
    shares = [f"{b}/{n} ({b / n:.0%})" if n else "0/0" for b, n in zip(beating, with_gain, strict=True)]
    fig = go.Figure([  # horizontal: a base's whole name fits beside its bars
        go.Bar(y=bases, x=with_gain, orientation="h", name="models with a mean gain", marker_color=NEUTRAL,
               hovertemplate="%{y}<br>%{x} models with a mean gain<extra></extra>"),
        go.Bar(y=bases, x=beating, orientation="h", name="beat the base beyond seed noise", marker_color=POSITIVE,
               text=shares, textposition="outside", cliponaxis=False,
               hovertemplate="%{y}<br>%{text} beat the base<extra></extra>"),
    ])
    fig.update_layout(template=_TEMPLATE, barmode="group", title={"text": "Models that beat their base"},
                      xaxis_title="models", yaxis={"type": "category", "autorange": "reversed", "automargin": True},
                      legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
                      height=160 + 48 * len(bases), margin={"l": 20, "r": 60, "t": 90, "b": 50})
    return fig


def target_gains_bar(row: pd.Series) -> go.Figure:
    """One model's per-target gains (points), sorted so the largest gain is on top; blue up, red down."""
    gains = pd.to_numeric(row[[k for k in row.index if str(k).startswith(GAIN_PREFIX)]], errors="coerce")
    gains = gains[np.isfinite(gains.to_numpy(dtype=np.float64, na_value=np.nan))].astype(np.float64) * 100
    if gains.empty:
        return empty_figure("no per-target gains for this model yet")
    gains = gains.sort_values(kind="mergesort")
    targets = [_escape(str(k)[len(GAIN_PREFIX):]) for k in gains.index]
    values = gains.to_numpy()
    fig = go.Figure(go.Bar(
        x=values, y=targets, orientation="h", marker_color=[POSITIVE if v > 0 else NEGATIVE if v < 0 else NEUTRAL
                                                             for v in values],
        hovertemplate="%{y}: %{x:+.2f} pts<extra></extra>",
    ))
    repo_id = row.get("repo_id")
    title = f"Per-target gain over the base: {repo_id}" if isinstance(repo_id, str) else "Per-target gain over the base"
    fig.update_layout(template=_TEMPLATE, title={"text": _escape(title)}, xaxis_title="gain (points)",
                      yaxis={"type": "category", "automargin": True}, height=160 + 22 * len(values),
                      margin={"l": 20, "r": 20, "t": 60, "b": 50})
    return fig


def compare_gains_figure(rows: pd.DataFrame) -> go.Figure:
    """Per-target gains (points) of a few models as grouped bars: one colour per model, targets along x.

    ``rows`` are leaderboard rows (``ui.compare.compared_rows``), in the order they are compared.
    """
    gain_columns = [c for c in rows.columns if str(c).startswith(GAIN_PREFIX)]
    z = np.column_stack([_numeric(rows, c) for c in gain_columns]) * 100 if gain_columns else np.empty((0, 0))
    if rows.empty or not np.isfinite(z).any():
        return empty_figure("no per-target gains for these models yet")
    targets = [_escape(c[len(GAIN_PREFIX):]) for c in gain_columns]
    names = _model_labels(rows)
    fig = go.Figure([
        go.Bar(x=targets, y=z[i], name=name, marker_color=qualitative.Plotly[i % len(qualitative.Plotly)],
               hovertemplate="%{fullData.name}<br>%{x}: %{y:+.2f} pts<extra></extra>")
        for i, name in enumerate(names)
    ])
    fig.add_hline(y=0, line={"color": NEUTRAL, "width": 1})
    fig.update_layout(template=_TEMPLATE, barmode="group", title={"text": "Per-target gain over the base"},
                      xaxis={"type": "category", "title": {"text": "target"}, "automargin": True},
                      yaxis_title="gain (points)", legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
                      height=460, margin={"l": 60, "r": 20, "t": 90, "b": 60})
    return fig


def sample_efficiency_figure(points: pd.DataFrame) -> go.Figure:
    """Accuracy (×100) against number of labels on a log axis: one line per model, one colour per model.

    ``points`` has columns model, n_labels, accuracy and optionally kind ("measured" drawn as markers
    and lines, "fit" as a dashed line).
    """
    needed = {"model", "n_labels", "accuracy"}
    if points.empty or not needed <= set(points.columns):
        return empty_figure("no sample-efficiency measurements yet")
    data = points.assign(n_labels=pd.to_numeric(points["n_labels"], errors="coerce"),
                         accuracy=pd.to_numeric(points["accuracy"], errors="coerce"))
    data = data[np.isfinite(data["n_labels"]) & np.isfinite(data["accuracy"]) & (data["n_labels"] > 0)]
    if data.empty:
        return empty_figure("no sample-efficiency measurements yet")
    if "kind" not in data:
        data = data.assign(kind="measured")
    fig = go.Figure()
    palette = qualitative.Plotly
    for i, (model, group) in enumerate(data.groupby("model", sort=False)):
        colour, name = palette[i % len(palette)], _escape(str(model))
        for kind, part in group.groupby("kind", sort=False):
            part = part.sort_values("n_labels", kind="mergesort")
            is_fit = kind == "fit"
            fig.add_trace(go.Scatter(
                x=part["n_labels"].to_numpy(), y=part["accuracy"].to_numpy() * 100,
                mode="lines" if is_fit else "lines+markers", name=f"{name} (fit)" if is_fit else name,
                legendgroup=name, line={"color": colour, "dash": "dash" if is_fit else "solid"},
                hovertemplate=f"{name}<br>%{{x:,}} labels: %{{y:.2f}}<extra>{_escape(str(kind))}</extra>",
            ))
    fig.update_layout(template=_TEMPLATE, title={"text": "Accuracy against number of labels"},
                      xaxis={"type": "log", "title": {"text": "labels"}}, yaxis_title="accuracy (×100)",
                      height=420, margin={"l": 60, "r": 20, "t": 60, "b": 50})
    return fig


def _escape(text: str) -> str:
    """Text as plotly should show it, not interpret it (plotly renders a subset of HTML in labels)."""
    return html.escape(str(text), quote=False)


def _candidates(frame: pd.DataFrame) -> pd.DataFrame:
    if "is_baseline" not in frame:
        return frame
    return frame[~frame["is_baseline"].eq(True).to_numpy()]


def _numeric(frame: pd.DataFrame, key: str) -> np.ndarray:
    if key not in frame:
        return np.full(len(frame), np.nan)
    return as_float(frame[key])


def _display_scale(key: str) -> float:
    """100 for columns the table shows ×100 (fractions and gains), else 1 (per ``ranking.columns``)."""
    try:
        return 100.0 if column_for(key).fmt in ("pct", "pts") else 1.0
    except KeyError:
        return 1.0


def _model_labels(rows: pd.DataFrame) -> list[str]:
    """Escaped repo ids; a repo listed at several revisions gets ``@<sha[:7]>`` so rows stay distinct."""
    repos = rows["repo_id"].astype(str).tolist()
    revisions = rows["revision"].astype(str).tolist() if "revision" in rows else [""] * len(repos)
    repeated = {r for r in repos if repos.count(r) > 1}
    labels = [f"{r}@{v[:7]}" if r in repeated else r for r, v in zip(repos, revisions, strict=True)]
    return [_escape(label) for label in labels]
