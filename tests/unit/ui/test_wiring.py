"""Every component of the layout is wired: each filter refilters the table, each button runs its handler, each
view is some event's output, and each event's handler returns one value per output."""

from dataclasses import fields, is_dataclass
from types import SimpleNamespace

import pytest

from tests.helpers.leaderboard_store import BASE, build_store
from ui.board_cache import BoardKey
from ui.events import AppEvents
from ui.handlers import AppHandlers
from ui.layout import Filters, build_layout
from ui.wiring import SUBMIT_CONCURRENCY, user_change, wire


@pytest.fixture(scope="module")
def wired(tmp_path_factory):
    import gradio as gr

    from data.settings import Settings

    tmp = tmp_path_factory.mktemp("wiring")
    settings = Settings(db_path=tmp / "lb.db", cache_dir=tmp / "cache")
    handlers = AppHandlers(build_store(tmp / "lb.db"), settings)
    with gr.Blocks() as demo:
        layout = build_layout(handlers.service.bases(), BASE, "project")
        wire(demo, layout, AppEvents(handlers))
    return demo, layout


def _components(group) -> list:
    """Every component a layout group holds, through its nested groups."""
    out = []
    for f in fields(group):
        value = getattr(group, f.name)
        out += _components(value) if is_dataclass(value) else [value]
    return out


def _events(demo) -> list[tuple[set, list, list, str]]:
    """(targets as (component id, event), inputs, outputs, handler name) of every registered event."""
    return [({tuple(t) for t in fn.targets}, fn.inputs, fn.outputs, fn.name) for fn in demo.fns.values()]


def test_every_component_of_the_layout_is_wired(wired):
    demo, layout = wired
    events = _events(demo)
    used = {id(c) for _, inputs, outputs, _ in events for c in (*inputs, *outputs)}
    used |= {component_id for targets, *_ in events for component_id, _ in targets}
    unwired = [c for c in _components(layout) if id(c) not in used and c._id not in used]
    assert unwired == [], f"components in the layout no event reads, updates or listens to: {unwired}"


def test_each_filter_refilters_the_table_and_every_filtering_event_reads_them_all_by_name(wired):
    demo, layout = wired
    events = _events(demo)
    filters = layout.filters.as_list()
    assert [f.name for f in fields(Filters)] == ["search", "licenses", "min_downloads", "fully_scored", "hide_below",
                                                 "groups", "sort_by", "max_rows", "sizes", "include_seen",
                                                     "include_suspect"]
    for f in fields(Filters):
        control = getattr(layout.filters, f.name)
        # a user's own change (input), not the values a new board or a page load sets: one event refilters the
        # table and gives the address; a toggle also brings the model page and the comparison along
        event = user_change(control).event_name  # a single-choice dropdown's blur, else its input
        on_input = [e for e in events if (control._id, event) in e[0]]
        also = ["on_include_seen"] if f.name in ("include_seen", "include_suspect") else []
        assert [e[3] for e in on_input] == ["on_filters", *also], f.name
        assert not [e for e in events if (control._id, "change") in e[0]], f.name
        assert on_input[0][1] == [layout.leaderboard.shown_board, *filters]
        assert on_input[0][2] == layout.table_view().as_list() and layout.page_url in on_input[0][2]
    for name in ("on_load", "on_base_pick", "on_source_input", "on_export"):
        (inputs,) = [e[1] for e in events if e[3] == name]
        assert inputs[-len(filters):] == filters, name  # in Filters field order: the handler reads Filters(*values)


def test_every_view_of_a_board_reads_the_two_estimand_toggles_last(wired):
    """The model page, comparison and insights read the board the table shows: its estimand too."""
    demo, layout = wired
    seen, suspect = layout.filters.include_seen, layout.filters.include_suspect
    assert (seen.label, seen.value, seen.elem_id) == ("Include the targets a model was trained on", False,
                                                      "include-seen")
    assert (suspect.label, suspect.value, suspect.elem_id) == ("Include suspect imported cells", False,
                                                               "include-suspect")
    events = _events(demo)
    for name in ("on_model_tab", "on_compare", "on_add_to_compare", "on_insights", "on_include_seen"):
        inputs = [e[1] for e in events if e[3] == name]
        assert inputs and all(i[0] is layout.leaderboard.shown_board and i[-2:] == [seen, suspect]
                              for i in inputs), name
    (load,) = [e for e in events if e[3] == "on_load"]
    restored = layout.restored_view().as_list()
    assert load[2][-15:-8] == restored and restored[:2] == [seen, suspect]  # a URL's include_seen=1 ticks it
    assert load[2][-8:] == layout.model.view.as_list()  # a URL's model page
    follow = [e for e in events if e[3] == "on_include_seen"]
    assert len(follow) == 2 and all(e[2] == [*layout.model.view.as_list(), *layout.compare.as_list()]
                                    for e in follow)


def test_each_button_runs_its_handler(wired):
    demo, layout = wired
    buttons = {layout.leaderboard.compare_button: "on_compare", layout.leaderboard.export_button: "on_export",
               layout.model.show: "on_open_model", layout.model.add_to_compare: "on_add_to_compare",
               layout.insights.refresh: "on_insights", layout.submit.button: "on_submit",
               layout.submit.refresh: "on_jobs"}
    clicks = {component_id: e[3] for e in _events(demo) for component_id, event in e[0] if event == "click"}
    assert {button._id: name for button, name in buttons.items()} == {k: v for k, v in clicks.items()
                                                                       if k != layout.copy_link._id}
    assert clicks[layout.copy_link._id] is None  # it runs in the browser alone
    (submit,) = [fn for fn in demo.fns.values() if (layout.submit.button._id, "click") in map(tuple, fn.targets)]
    assert submit.concurrency_limit == SUBMIT_CONCURRENCY and submit.concurrency_id == "submit"


def test_a_new_board_is_one_event_and_a_model_page_is_computed_when_opened(wired):
    """A pick of base or source is one event: the board, its controls and the address (no filter, model page or
    address event follows it). The model page is computed when a user opens it (a row, Show, a model picked, its
    tab) and carries its address; a comparison sets the address after the fact (it can be refused)."""
    demo, layout = wired
    after = {fn.trigger_after: fn.name for fn in demo.fns.values() if fn.trigger_after is not None}
    by_name = {}
    for key, fn in demo.fns.items():
        by_name.setdefault(fn.name, []).append((key, fn))
    for name in ("on_base_pick", "on_source_input"):
        (key, fn), = by_name[name]
        assert key not in after and layout.page_url in fn.outputs, name
    (key, _), = by_name["on_select"]
    assert after[key] == "on_open_model"
    for name in ("on_compare", "on_add_to_compare"):
        assert any(after.get(key) == "on_compare_url" for key, _ in by_name[name]), name
    opened = [fn for _, fn in by_name["on_open_model"]]
    targets = {t for fn in opened for t in map(tuple, fn.targets)}
    assert {(layout.model.show._id, "click"), (layout.model.model._id, "blur")} <= targets
    assert all(fn.outputs == [*layout.model.view.as_list(), layout.page_url] for fn in opened)
    assert "on_model" not in by_name  # nothing recomputes the page when a new board sets the model's value
    (tab,) = [fn for _, fn in by_name["on_model_tab"]]
    assert (layout.tabs._id, "select") in map(tuple, tab.targets)


def test_the_address_bar_follows_page_url_and_copy_link_copies_it_in_the_browser(wired):
    """No round trip for either: page_url's change replaces the address (history.replaceState), Copy link writes
    location.href to the clipboard; both are JavaScript listeners without a Python handler."""
    demo, layout = wired
    by_target = {component_id: fn for fn in demo.fns.values() for component_id, _ in fn.targets}
    follow, copy = by_target[layout.page_url._id], by_target[layout.copy_link._id]
    assert follow.fn is None and "history.replaceState" in follow.js and follow.inputs == [layout.page_url]
    assert copy.fn is None and "clipboard" in copy.js and "location.href" in copy.js


def test_each_handler_returns_one_value_per_output(wired):
    demo, layout = wired
    (fn,) = [fn for fn in demo.fns.values() if fn.name == "on_load"]
    events = fn.fn.__self__
    board = BoardKey(BASE, "project")
    values = [getattr(c, "value", None) for c in layout.filters.as_list()]
    calls = {"on_load": events.on_load(None, *values),
             "on_base_pick": events.on_base_pick(BASE, BoardKey("old/base", "project"), *values),
             "on_source_input": events.on_source_input(board, "project", *values),
             "on_filters": events.on_filters(board, *values),
             "on_open_model": events.on_open_model(board, "alice/strong", *values),
             "on_model_tab": events.on_model_tab(board, "alice/strong", evt=SimpleNamespace(value="Model")),
             "on_compare": events.on_compare(board, ["alice/strong", "bob/middling"]),
             "on_add_to_compare": events.on_add_to_compare(board, ["alice/strong"], "bob/middling"),
             "on_insights": events.on_insights(board), "on_jobs": events.on_jobs(),
             "on_include_seen": events.on_include_seen(board, "alice/strong", ["alice/strong", "bob/middling"], True)}
    for name, returned in calls.items():
        outputs = {len(fn.outputs) for fn in demo.fns.values() if fn.name == name}
        assert outputs == {len(returned)}, name


def test_the_compare_picker_stops_at_the_most_a_comparison_takes(wired):
    from ui.compare import MAX_MODELS

    _, layout = wired
    assert layout.leaderboard.compare_pick.max_choices == MAX_MODELS == 4


def test_the_base_menu_sends_one_event_per_pick_and_a_pick_of_the_base_on_show_changes_nothing(wired):
    """Gradio's dropdown sends .input twice for a click on an option (the pick, then the blur after it) and once
    for Enter; its blur ends both, once. Leaving the menu on the base on show updates no component."""
    import gradio as gr

    demo, layout = wired
    base = layout.leaderboard.base
    (pick,) = [fn for fn in demo.fns.values() if fn.name == "on_base_pick"]
    assert list(map(tuple, pick.targets)) == [(base._id, "blur")]
    assert not [fn for fn in demo.fns.values() for t in fn.targets if tuple(t) == (base._id, "input")]
    events = pick.fn.__self__
    values = [getattr(c, "value", None) for c in layout.filters.as_list()]
    unchanged = events.on_base_pick(BASE, BoardKey(BASE, "project"), *values)
    assert len(unchanged) == len(pick.outputs) and all(v == gr.skip() for v in unchanged)
    moved = events.on_base_pick(BASE, BoardKey("old/base", "project"), *values)
    assert [v for v in moved if v == gr.skip()] == []


def test_a_single_choice_dropdown_is_heard_on_its_blur_and_every_other_control_on_its_input(wired):
    """Gradio's single-choice dropdown sends input twice per click on an option: the board's base and sort menus and
    the model page's model are heard once, on their blur; a multiselect, a textbox or a checkbox on their input."""
    import gradio as gr

    demo, layout = wired
    single = [layout.leaderboard.base, layout.filters.sort_by, layout.model.model]
    assert all(isinstance(c, gr.Dropdown) and not c.multiselect for c in single)
    heard = {(t[0], t[1]) for fn in demo.fns.values() for t in fn.targets}
    for control in single:
        assert (control._id, "blur") in heard and (control._id, "input") not in heard
    assert user_change(layout.filters.licenses).event_name == "input"  # a multiselect
    assert user_change(layout.filters.search).event_name == "input"
