"""The "Your data" tab's components, held by name (as ui/layout.py holds the others'): the form, the request on
show and its view. ``build_personal_tab`` runs inside ``with gr.Blocks()``; importing this module does not import
gradio."""

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ui.in_order import InOrder
from ui.personal_views import empty_headers

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PersonalInputs(InOrder, Generic[T]):
    """The "Your data" form: what a ``ui.personal.PersonalForm`` is made of (the same fields, in order)."""

    base_id: T
    file_path: T
    hub_id: T
    hub_config: T
    hub_split: T
    hub_revision: T
    text_column: T
    pair_column: T
    label_column: T
    top_k: T
    models: T


@dataclass(frozen=True, slots=True)
class PersonalView(InOrder, Generic[T]):
    """What the "Your data" tab shows of one personal ranking (``ui.personal.PersonalState``), and its poll timer."""

    share: T
    status: T
    table: T
    rule: T
    csv_file: T
    json_file: T
    timer: T


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalTab:
    """The "Your data" tab: the form, its Rank button and message, the request watched and its view."""

    inputs: PersonalInputs
    button: Any
    message: Any
    token: Any  # gr.State: the token of the personal ranking on show ("" none)
    view: PersonalView


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalDefaults:
    """What the "Your data" tab opens with: the bases a ranking can run on, the one picked, K and its bounds."""

    bases: list[str]
    base0: str | None
    top_k: int
    max_top_k: int
    intro: str  # Markdown: what the tab does and how long what is kept
    models_hint: str = "owner/name, ./folder — comma-separated or one per line"
    poll_s: float = 1.5  # how often an open request is asked for its progress


def build_personal_tab(tabs, defaults: PersonalDefaults) -> PersonalTab:
    """The "Your data" tab, added to ``tabs`` (``build_layout``'s): rank a base's top candidates on a user's own
    labelled rows, a file or a Hub dataset."""
    import gradio as gr

    with tabs, gr.Tab("Your data", id="personal"):
        gr.Markdown(defaults.intro, elem_id="personal-intro")
        with gr.Row():
            base = gr.Dropdown(label="base model", choices=defaults.bases, value=defaults.base0,
                               elem_id="personal-base", scale=3)
            top_k = gr.Number(label="candidates (top K of its leaderboard)", value=defaults.top_k, precision=0,
                              minimum=0, maximum=defaults.max_top_k, elem_id="personal-top-k", scale=1)
        models = gr.Textbox(label="…or the models to rank, with the base (instead of the top K)", lines=2,
                            placeholder=defaults.models_hint, elem_id="personal-models")
        file = gr.File(label="your data: a CSV, JSON Lines or Parquet file with a header row", type="filepath",
                       elem_id="personal-file")
        with gr.Accordion("…or a dataset on the Hub", open=False, elem_id="personal-hub"):
            with gr.Row():
                hub_id = gr.Textbox(label="dataset id", placeholder="owner/name", elem_id="personal-hub-id")
                hub_config = gr.Textbox(label="configuration (optional)", elem_id="personal-hub-config")
                hub_split = gr.Textbox(label="split", placeholder="train", elem_id="personal-hub-split")
                hub_revision = gr.Textbox(label="revision (optional)", placeholder="main, a tag or a commit sha",
                                          elem_id="personal-hub-revision")
        with gr.Row():
            text_column = gr.Dropdown(label="text column", choices=[], allow_custom_value=True,
                                      elem_id="personal-text-column")
            pair_column = gr.Dropdown(label="second text column (optional, for sentence pairs)", choices=[],
                                      allow_custom_value=True, elem_id="personal-pair-column")
            label_column = gr.Dropdown(label="label column", choices=[], allow_custom_value=True,
                                       elem_id="personal-label-column")
        button = gr.Button("Rank", variant="primary", elem_id="personal-submit")
        message = gr.Markdown(elem_id="personal-message")
        share = gr.Markdown(elem_id="personal-share")
        status = gr.Markdown(elem_id="personal-status")
        table = gr.Dataframe(headers=empty_headers(), interactive=False, wrap=True, max_height=640,
                             elem_id="personal-table")
        rule = gr.Markdown(elem_id="personal-rule")
        with gr.Row():
            csv_file = gr.File(label="ranking (CSV)", interactive=False, elem_id="personal-download-csv")
            json_file = gr.File(label="ranking with diagnostics (JSON)", interactive=False,
                                elem_id="personal-download-json")
        timer = gr.Timer(defaults.poll_s, active=False)
        token = gr.State("")
    inputs = PersonalInputs(base_id=base, file_path=file, hub_id=hub_id, hub_config=hub_config, hub_split=hub_split,
                            hub_revision=hub_revision, text_column=text_column, pair_column=pair_column,
                            label_column=label_column, top_k=top_k, models=models)
    view = PersonalView(share=share, status=status, table=table, rule=rule, csv_file=csv_file, json_file=json_file,
                        timer=timer)
    return PersonalTab(inputs=inputs, button=button, message=message, token=token, view=view)
