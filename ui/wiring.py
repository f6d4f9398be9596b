"""Which event of which component runs which handler: ``wire(demo, layout, events)`` registers them all.

Components come from ``ui.layout.Layout`` by name; the handlers are ``ui.events.AppEvents`` methods
(``wire_personal``: the "Your data" tab's ``ui.layout.PersonalTab`` and ``ui.events.PersonalEvents``). Registered in
a fixed order (Gradio numbers events by it), inside the Blocks context the layout was built in. The
``include_seen`` and ``include_suspect`` toggles are filters (they rebuild the table); the model page, comparison
and insights read them too, as their last inputs, so every view is of the board the table shows.
"""

import gradio as gr

from ui.events import AppEvents, PersonalEvents
from ui.layout import Layout, PersonalTab

SUBMIT_CONCURRENCY = 8  # submissions checked at once (each waits on the Hub, not on the CPU)
PERSONAL_CONCURRENCY = 2  # uploads read and checked at once (each parses a file of up to personal_max_bytes)
POLL_CONCURRENCY = 16  # progress polls answered at once (each reads one request from the store)


# The browser's address bar follows the hidden page_url (replace, not push: Back leaves the page, as before);
# "Copy link" copies it (the clipboard API where the page is a secure context, else a selected textarea).
REPLACE_URL_JS = "(url) => { if (url) { history.replaceState(history.state, '', url); } return url; }"
COPY_LINK_JS = """() => {
  const url = location.href;
  const said = () => {
    const b = document.querySelector('#copy-link');
    if (!b) { return; }
    const text = b.textContent;
    b.textContent = 'Link copied';
    setTimeout(() => { b.textContent = text; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(url).then(said); return; }
  const area = document.createElement('textarea'); area.value = url; document.body.appendChild(area); area.select();
  document.execCommand('copy'); area.remove(); said();
}"""


def wire(demo, layout: Layout, events: AppEvents) -> None:
    _wire_page_load(demo, layout, events)
    _wire_board(layout, events)
    _wire_model_and_compare(layout, events)
    _wire_export(layout, events)
    _wire_insights(layout, events)
    _wire_submit(layout, events)
    _wire_address(layout, events)


def user_change(component):
    """The listener of a user's own change of ``component``: its ``blur`` for a single-choice Dropdown (Gradio's
    dropdown sends ``input`` twice for a click on an option, on the pick and on the blur that follows, and once
    for Enter; its blur ends every pick once), else its ``input``."""
    if isinstance(component, gr.Dropdown) and not component.multiselect:
        return component.blur
    return component.input


def _address(layout: Layout, fn, *middle) -> dict:
    """The arguments of a listener that sets page_url from the board on show, ``middle``'s values and the filters."""
    return {"fn": fn, "inputs": [layout.leaderboard.shown_board, *middle, *layout.filters.as_list()],
            "outputs": [layout.page_url]}


def _wire_page_load(demo, layout: Layout, events: AppEvents) -> None:
    lb = layout.leaderboard
    demo.load(events.on_load, inputs=layout.filters.as_list(),
              outputs=[lb.base, *layout.board_view().as_list(), *layout.compare.as_list(), layout.tabs,
                       *layout.restored_view().as_list(), *layout.model.view.as_list()])
    demo.load(events.on_jobs, outputs=layout.submit.jobs.as_list())
    demo.load(events.board_links, outputs=[layout.board_links])


def _wire_board(layout: Layout, events: AppEvents) -> None:
    """The leaderboard tab: a pick of base or source, a filter, a clicked row, a download. Each is one event
    (the address included); filters listen to a user's own input, not to the values a new board sets."""
    lb, filters = layout.leaderboard, layout.filters.as_list()
    # The base menu's blur, not .change (on_load sets base and source itself: a URL's model or comparison must
    # survive it) nor .input (Gradio's dropdown sends input twice for a click on an option, on the pick and on
    # the blur that follows; blur ends every pick, by mouse or by Enter, once). A blur with the base unchanged
    # changes nothing. Each reads the other from shown_board.
    user_change(lb.base)(events.on_base_pick, inputs=[lb.base, lb.shown_board, *filters],
                         outputs=layout.board_view().as_list())
    lb.source.input(events.on_source_input, inputs=[lb.shown_board, lb.source, *filters],
                    outputs=layout.board_view().as_list())
    table_view = layout.table_view().as_list()
    layout.filters.search.submit(events.on_filters, inputs=[lb.shown_board, *filters], outputs=table_view)
    for control in filters:
        user_change(control)(events.on_filters, inputs=[lb.shown_board, *filters], outputs=table_view,
                             trigger_mode="always_last")
    opened = [*layout.model.view.as_list(), layout.page_url]
    lb.table.select(events.on_select, inputs=[lb.shown_ids], outputs=[layout.model.model, layout.tabs]).then(
        events.on_open_model, inputs=[lb.shown_board, layout.model.model, *filters], outputs=opened)


def _wire_model_and_compare(layout: Layout, events: AppEvents) -> None:
    lb, model = layout.leaderboard, layout.model
    toggles = [layout.filters.include_seen, layout.filters.include_suspect]
    opened = {"inputs": [lb.shown_board, model.model, *layout.filters.as_list()],
              "outputs": [*model.view.as_list(), layout.page_url]}
    user_change(model.model)(events.on_open_model, **opened)
    model.show.click(events.on_open_model, **opened)
    layout.tabs.select(events.on_model_tab, inputs=[lb.shown_board, model.model, *toggles],
                       outputs=model.view.as_list())
    lb.compare_button.click(events.on_compare, inputs=[lb.shown_board, lb.compare_pick, *toggles],
                            outputs=[*layout.compare.as_list(), layout.tabs]).then(
        **_address(layout, events.on_compare_url, lb.compare_pick))
    model.add_to_compare.click(events.on_add_to_compare,
                               inputs=[lb.shown_board, lb.compare_pick, model.model, *toggles],
                               outputs=[lb.compare_pick, *layout.compare.as_list(), layout.tabs]).then(
        **_address(layout, events.on_compare_url, lb.compare_pick))
    # a toggle changes the board shown: the model page and the comparison follow (the table: _wire_board)
    for toggle in toggles:
        toggle.input(events.on_include_seen, inputs=[lb.shown_board, model.model, lb.compare_pick, *toggles],
                      outputs=[*model.view.as_list(), *layout.compare.as_list()], trigger_mode="always_last")


def _wire_export(layout: Layout, events: AppEvents) -> None:
    lb = layout.leaderboard
    lb.export_button.click(events.on_export, inputs=[lb.shown_board, lb.download_scope, lb.download_format,
                                                     *layout.filters.as_list()], outputs=lb.export_file)


def _wire_insights(layout: Layout, events: AppEvents) -> None:
    """Computed when asked (Refresh) and whenever a tab is picked."""
    inputs = [layout.leaderboard.shown_board, layout.filters.include_seen, layout.filters.include_suspect]
    outputs = layout.insights.view.as_list()
    layout.insights.refresh.click(events.on_insights, inputs=inputs, outputs=outputs)
    layout.tabs.select(events.on_insights, inputs=inputs, outputs=outputs)


def _wire_submit(layout: Layout, events: AppEvents) -> None:
    submit = layout.submit
    # Submit has its own workers: one user's slow Hub answer never holds another's (Gradio's default is 1)
    for trigger in (submit.button.click, submit.repo_id.submit):
        trigger(events.on_submit, inputs=[submit.repo_id, submit.revision],
                outputs=[submit.result, *submit.jobs.as_list()], concurrency_limit=SUBMIT_CONCURRENCY,
                concurrency_id="submit")
    submit.refresh.click(events.on_jobs, outputs=submit.jobs.as_list())


def wire_personal(demo, tab: PersonalTab, events: PersonalEvents) -> None:
    """The "Your data" tab: the URL's ranking on load, an upload's columns, Rank, and the timer's polls of the
    request on show. Uploads and Rank share their own workers; polls have theirs, and show no progress spinner."""
    form, view = tab.inputs, tab.view.as_list()
    demo.load(events.on_personal_load, outputs=[form.base_id, tab.token, *view])
    form.file_path.change(events.on_personal_file, inputs=[form.file_path],
                          outputs=[form.text_column, form.pair_column, form.label_column, tab.message],
                          concurrency_limit=PERSONAL_CONCURRENCY, concurrency_id="personal")
    tab.button.click(events.on_personal_rank, inputs=form.as_list(), outputs=[tab.message, tab.token, *view],
                     concurrency_limit=PERSONAL_CONCURRENCY, concurrency_id="personal")
    tab.view.timer.tick(events.on_personal_poll, inputs=[tab.token], outputs=view, show_progress="hidden",
                        concurrency_limit=POLL_CONCURRENCY, concurrency_id="personal-poll")


def _wire_address(layout: Layout, events: AppEvents) -> None:
    """The address bar follows the view: a new board, a filter, a model page opened set page_url in their own event
    (_wire_board, _wire_model_and_compare); a comparison sets it after the fact (it can be refused); a tab picked
    gives that tab's. page_url's change replaces the address in the browser; "Copy link" copies it there."""
    lb, model = layout.leaderboard, layout.model
    layout.tabs.select(**_address(layout, events.on_tab_url, model.model, lb.compare_pick))
    layout.page_url.change(None, inputs=[layout.page_url], js=REPLACE_URL_JS)
    layout.copy_link.click(None, js=COPY_LINK_JS)
