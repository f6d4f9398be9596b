"""The "Your data" tab without a browser: its handlers (ui/personal.py) and events (ui/events.py) on a real store.

A refusal is one sentence and queues nothing; a good file queues one job and links to its token; the status line
follows the job (queued, scoring per model, done with the ranking and its files, failed with its error); whatever
a file or the Hub names is escaped where it lands."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import fields, replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from data.escape import markdown_text
from data.local_hub import LocalHub
from data.personal_record import Estimate, PersonalRanking, RankedModel
from data.records import PERSONAL_JOB, JobStatus
from ranking.personal import COMBINED_RULE, personal_result
from tests.helpers.leaderboard_store import BASE, EVIL, build_store
from ui.events import PersonalEvents
from ui.layout import PersonalInputs, PersonalView
from ui.personal import NO_PAIR, PersonalForm, PersonalHandlers, PersonalRefused, escaped
from ui.urls import page_params

HOSTILE_COLUMN = "<img src=x onerror=alert(1)>"
BOLD = "**bold**"


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(header)
        out.writerows(rows)
    return path


def reviews(path: Path, labels=("pos", "neg"), n: int = 6) -> Path:
    return write_csv(path, ["text", "label"], [[f"review number {i}", labels[i % len(labels)]] for i in range(n)])


@pytest.fixture
def store(tmp_path):
    return build_store(tmp_path / "lb.db")


@pytest.fixture(scope="module")
def hub():
    """A running Hub with no models: it answers, so a model missing from the cache can still be fetched later."""
    with LocalHub() as running:
        yield running


@pytest.fixture
def settings(settings, hub):
    return replace(settings, hub_endpoint=hub.url)


@pytest.fixture
def handlers(store, settings, tmp_path):
    return PersonalHandlers(store, replace(settings, personal_top_k=2), uploads=tmp_path)


def form(path: Path | None, **values) -> PersonalForm:
    return PersonalForm(**{"base_id": BASE, "file_path": str(path) if path else None, "text_column": "text",
                           "label_column": "label", **values})


def personal_jobs(store) -> list:
    return store.queue.jobs(scorer=PERSONAL_JOB)


def entry(repo_id: str, role: str, rank, gain, probe, *, error: str = "", logme_status: str = "ok") -> RankedModel:
    estimates = {} if error else {
        "cv_probe": Estimate(metric="cv_probe_accuracy", value=probe, status="ok", seconds=0.1),
        "logme": Estimate(metric="logme", value=probe - 1, status=logme_status, seconds=0.1,
                          error="" if logme_status == "ok" else "<b>not finite</b>")}
    return RankedModel(repo_id=repo_id, revision="a" * 40, role=role, general_rank=rank, mean_gain=gain,
                       estimates=estimates, error=error, feature_seconds=0.1, seconds=0.25)


def finished_result(request) -> PersonalRanking:
    entries = [entry(BASE, "base", None, 0.0, 0.6), entry("alice/strong", "candidate", 1, 0.07, 0.9,
                                                           logme_status="failed"),
               entry(EVIL, "candidate", 2, 0.05, 0.0, error="cannot read <img src=y onerror=alert(2)>")]
    return personal_result(entries, metrics={"cv_probe": "cv_probe_accuracy", "logme": "logme"},
                           protocols={"cv_probe": "p", "logme": "l"}, base_id=request.base_id,
                           source=request.source, summary=request.summary)


# ---------------------------------------------------------------------------------------------------- the form
def test_an_uploaded_files_columns_fill_the_pickers_with_guesses(handlers, tmp_path):
    path = write_csv(tmp_path / "pairs.csv", ["id", "Sentence1", "sentence2", "Label"], [["1", "a", "b", "x"]])
    found = handlers.columns(str(path))
    assert found.columns == ("id", "Sentence1", "sentence2", "Label")
    assert (found.text, found.pair, found.label) == ("Sentence1", "sentence2", "Label")
    plain = handlers.columns(str(write_csv(tmp_path / "plain.csv", ["body", "stars"], [["good", "5"]])))
    assert (plain.text, plain.pair, plain.label) == ("body", NO_PAIR, "stars")
    assert handlers.columns(None).columns == ()
    scored = handlers.columns(str(write_csv(tmp_path / "scored.csv", ["text", "sentiment", "score"],
                                            [["good", "pos", "0.9"]])))
    assert scored.label == "sentiment"  # a named label column, not the float column after it


def test_a_file_that_cannot_be_read_is_refused_when_uploaded(handlers, tmp_path):
    binary = tmp_path / "data.csv"
    binary.write_bytes(b"text,label\n\x00\x01\x02,pos\n")
    with pytest.raises(PersonalRefused, match="looks like a binary file"):
        handlers.columns(str(binary))
    undecodable = tmp_path / "latin.csv"
    undecodable.write_bytes("text,label\ncaf\xe9,pos\n".encode("latin-1"))
    with pytest.raises(PersonalRefused, match="is not UTF-8 text"):
        handlers.columns(str(undecodable))


@pytest.mark.parametrize(("change", "sentence"), [
    ({"labels": ("pos",)}, "distinct label(s) in column 'label'"),
    ({"labels": ("pos", "pos", "pos", "pos", "pos", "neg"), "n": 6}, "have fewer than 2 examples each"),
    ({"label_column": "stars"}, "has no column 'stars'"),
    ({"label_column": ""}, "Pick the column that holds the label."),
    ({"text_column": "label"}, "was picked twice"),
    ({"file": None}, "Upload a CSV, JSON Lines or Parquet file, or name a Hub dataset"),
    ({"hub_id": "org/data"}, "Give either a file or a Hub dataset, not both"),
    ({"hub_id": "../etc/passwd", "file": None}, "is not a Hub dataset id"),
    ({"top_k": 2.5}, "must be a whole number from 0 to 50"),
    ({"top_k": 51}, "must be a whole number from 0 to 50"),
    ({"base_id": "nobody/base"}, "There is no base model 'nobody/base'"),
    ({"base_id": ""}, "Pick a base model"),
])
def test_a_refusal_gives_its_sentence_and_queues_nothing(handlers, store, tmp_path, change, sentence):
    change = dict(change)
    path = reviews(tmp_path / "mine.csv", labels=change.pop("labels", ("pos", "neg")), n=change.pop("n", 6))
    if "file" in change:
        path = change.pop("file")
    with pytest.raises(PersonalRefused) as refused:
        handlers.rank(form(path, **change))
    assert sentence in refused.value.reason
    assert refused.value.reason.endswith(".") and "\n" not in refused.value.reason  # one sentence
    assert personal_jobs(store) == [] and store.requests.personal_row_sets() == 0


def test_the_size_and_row_limits_of_the_settings_hold(store, settings, tmp_path):
    path = reviews(tmp_path / "mine.csv", n=30)
    small = PersonalHandlers(store, replace(settings, personal_max_bytes=100), uploads=tmp_path)
    with pytest.raises(PersonalRefused, match="over the limit of 100 bytes"):
        small.rank(form(path))
    few = PersonalHandlers(store, replace(settings, personal_max_rows=10), uploads=tmp_path)
    with pytest.raises(PersonalRefused, match="has more than 10 rows; the limit is 10"):
        few.rank(form(path))
    assert personal_jobs(store) == [] and store.requests.personal_row_sets() == 0


def test_a_good_file_queues_one_job_and_links_to_its_token(handlers, store, tmp_path):
    request = handlers.rank(form(reviews(tmp_path / "mine.csv"), top_k="1"))
    (job,) = personal_jobs(store)
    assert job.id == request.job_id and job.status is JobStatus.PENDING and request.top_k == 1
    assert store.requests.personal_row_sets() == 1 and request.source == "upload:mine.csv"
    state = handlers.state(request.id)
    assert state.share == f"**Link to this ranking:** [`?personal={request.id}`](?personal={request.id})"
    assert state.is_open and state.table is None and state.csv_path is None
    assert page_params({"personal": request.id}).tab == "personal"
    assert handlers.rank(form(reviews(tmp_path / "mine.csv"))).top_k == 2  # no K: the setting's


# ---------------------------------------------------------------------------------------------------- the state
def test_the_status_follows_the_job_queued_scoring_done_and_failed(handlers, store, tmp_path):
    request = handlers.rank(form(reviews(tmp_path / "mine.csv")))
    alone = handlers.state(request.id).status  # no worker has polled this store
    assert alone.startswith("**Queued**, but no scoring worker is running: start one beside the app with "
                            "`python -m scoring work`")
    store.queue.mark_worker_alive()
    queued = handlers.state(request.id).status
    assert queued.startswith("**Queued**: waiting for a scoring worker. 0 of 3 models scored.")  # base + top 2
    assert "Base **org/base** and its top 2 candidates, on 6 rows from the file mine\\.csv" in queued
    assert "2 classes (neg: 3, pos: 3)" in queued

    job = store.queue.claim_job("w1", [PERSONAL_JOB])
    store.requests.set_personal_progress(request.id, [{"repo_id": BASE, "role": "base", "seconds": 1.25, "error": ""},
                                             {"repo_id": "alice/strong", "role": "candidate", "seconds": 0.0,
                                              "error": "no safetensors weights"}])
    running = handlers.state(request.id)
    assert running.is_open and running.status.startswith(
        "**Scoring**: 2 of 3 models scored: org/base (1.2 s), alice/strong (failed: no safetensors weights)")

    store.requests.finish_personal(job.id, "w1", finished_result(request))
    done = handlers.state(request.id)
    assert not done.is_open and done.status.startswith("**Done**: 2 of 3 models scored")
    assert list(done.table["model"])[0] == "[alice/strong](https://huggingface.co/alice/strong)"
    assert done.rule.startswith(escaped(COMBINED_RULE))
    assert store.requests.personal_row_sets() == 0

    failing = handlers.rank(form(reviews(tmp_path / "again.csv", n=8)))
    job = store.queue.claim_job("w1", [PERSONAL_JOB])
    store.queue.fail_job(job.id, "the base's snapshot could not be fetched: <b>timeout</b>", worker="w1")
    failed = handlers.state(failing.id)
    assert not failed.is_open and failed.table is None
    assert failed.status.startswith("**Failed**: the base's snapshot could not be fetched\\: &lt;b&gt;timeout")


def test_an_unknown_or_expired_token_says_so_in_one_sentence(handlers, store, settings, tmp_path):
    assert handlers.state("0" * 32).status == ("**No ranking at this link.** It is unknown, or it has expired: a "
                                               "ranking is kept for 7 days.")
    assert handlers.state("").status == "" and not handlers.state(None).is_open
    brief = PersonalHandlers(store, replace(settings, personal_ttl_s=0.2), uploads=tmp_path)
    request = brief.rank(form(reviews(tmp_path / "mine.csv")))
    time.sleep(0.25)
    assert brief.state(request.id).status.startswith("**No ranking at this link.**")


def test_the_finished_ranking_has_its_table_and_downloads(handlers, store, tmp_path):
    request = handlers.rank(form(reviews(tmp_path / "mine.csv")))
    job = store.queue.claim_job("w1", [PERSONAL_JOB])
    store.requests.finish_personal(job.id, "w1", finished_result(request))
    state = handlers.state(request.id)
    table = state.table
    assert list(table.columns) == ["rank", "model", "general rank", "general mean gain (pts)", "probe (your data)",
                                   "probe (your data) rank", "LogME (your data)", "LogME (your data) rank", "notes",
                                   "seconds"]
    assert state.datatypes[1] == "markdown" and state.datatypes[-2] == "str" and len(state.datatypes) == 10
    from ui.personal_views import empty_headers

    assert set(empty_headers()) <= set(table.columns)  # before a ranking the table shows these, not "1 2 3"
    assert list(table["model"][:2]) == ["[alice/strong](https://huggingface.co/alice/strong)",
                                        "[org/base](https://huggingface.co/org/base) (base)"]
    assert list(table["probe (your data)"][:2]) == [90.0, 60.0] and list(table["general mean gain (pts)"][:2]) == [7, 0]
    # a "str" cell: the page shows its characters as text (tests/browser/test_hostile_browser.py), escaped once
    assert list(table["notes"][:2]) == ["LogME (your data): failed: <b>not finite</b>", ""]
    assert str(table["LogME (your data) rank"][0]) == "<NA>" and table["LogME (your data)"].isna()[0]
    evil = table.iloc[2]
    assert evil["model"] == markdown_text(EVIL) and "<img" not in evil["model"]  # escaped, not linked
    assert evil["notes"] == "cannot read <img src=y onerror=alert(2)>" and str(evil["rank"]) == "<NA>"
    rows = list(csv.DictReader(io.StringIO(state.csv_path.read_text())))
    assert [r["repo_id"] for r in rows] == ["alice/strong", BASE, EVIL]
    document = json.loads(state.json_path.read_text())
    assert [m["repo_id"] for m in document["models"]] == ["alice/strong", BASE, EVIL]
    assert state.csv_path.parent == state.json_path.parent == Path(handlers.settings.cache_dir) / "exports"
    assert handlers.state(request.id).csv_path == state.csv_path  # the same bytes, the same file


def test_hostile_column_and_label_names_are_escaped(handlers, store, tmp_path):
    path = write_csv(tmp_path / "<b>evil.csv", [HOSTILE_COLUMN, "label"],
                     [[f"row {i}", [BOLD, "plain"][i % 2]] for i in range(6)])
    assert handlers.columns(str(path)).text == HOSTILE_COLUMN  # a name, shown by the dropdown as text
    with pytest.raises(PersonalRefused) as refused:
        handlers.rank(form(path, text_column="text"))
    events = PersonalEvents(handlers)
    message = events.on_personal_rank(*form_values(form(path, text_column="text")))[0]
    assert message == f"**Not queued.** {escaped(refused.value.reason)}"
    assert "<img" not in message and "<b>" not in message and "&lt;img src=x onerror=alert\\(1\\)&gt;" in message
    request = handlers.rank(form(path, text_column=HOSTILE_COLUMN))
    status = handlers.state(request.id).status
    assert markdown_text(BOLD) in status and BOLD not in status
    assert "<b>" not in status and markdown_text("<b>evil.csv") in status


# ---------------------------------------------------------------------------------------------------- events
def form_values(filled: PersonalForm) -> list:
    return [getattr(filled, f.name) for f in fields(PersonalInputs)]


def test_the_form_group_and_the_form_record_have_the_same_fields():
    assert [f.name for f in fields(PersonalInputs)] == [f.name for f in fields(PersonalForm)]


def test_rank_then_poll_watches_the_request_until_it_ends(handlers, store, tmp_path):
    events = PersonalEvents(handlers)
    message, token, *view = events.on_personal_rank(*form_values(form(reviews(tmp_path / "mine.csv"))))
    assert message.startswith("**Queued.**") and store.requests.personal(token) is not None
    assert len(view) == len(fields(PersonalView)) and view[-1].active is True  # the timer runs
    shown = PersonalView(*events.on_personal_poll(token))
    assert shown.status.startswith("**Queued**") and shown.timer.active is True and shown.csv_file is None
    job = store.queue.claim_job("w1", [PERSONAL_JOB])
    store.requests.finish_personal(job.id, "w1", finished_result(store.requests.personal(token)))
    done = PersonalView(*events.on_personal_poll(token))
    assert done.timer.active is False and done.csv_file.endswith(".csv") and done.json_file.endswith(".json")
    assert done.table["datatype"][1] == "markdown" and len(done.table["value"]) == 3

    refused = events.on_personal_rank(*form_values(form(reviews(tmp_path / "one.csv", labels=("pos",)))))
    assert refused[0].startswith("**Not queued.** The file ") and all(v == {"__type__": "update"}
                                                                      for v in refused[1:])


def test_the_url_opens_its_ranking_and_the_upload_fills_the_pickers(handlers, store, tmp_path):
    events = PersonalEvents(handlers)
    request = handlers.rank(form(reviews(tmp_path / "mine.csv")))
    base, token, *view = events.on_personal_load(SimpleNamespace(query_params={"personal": request.id}))
    assert base["choices"] == [BASE] and base["value"] == BASE and token == request.id
    assert PersonalView(*view).share.endswith(f"(?personal={request.id})")
    _, _, *unknown = events.on_personal_load(SimpleNamespace(query_params={"personal": "nope"}))
    assert PersonalView(*unknown).status.startswith("**No ranking at this link.**")

    text, pair, label, message = events.on_personal_file(str(reviews(tmp_path / "mine.csv")))
    assert (text["value"], label["value"], pair["value"]) == ("text", "label", NO_PAIR)
    assert text["choices"] == ["text", "label"] and pair["choices"][0] == ("none", NO_PAIR)
    assert message.startswith("Read 2 columns of **mine\\.csv**")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01")
    *_, refusal = events.on_personal_file(str(bad))
    assert refusal.startswith("**Cannot use this file.** The file 'bad\\.csv' looks like a binary")


def test_the_tab_is_wired_and_each_event_returns_one_value_per_output(handlers, tmp_path):
    import gradio as gr

    from ui.layout import build_page
    from ui.wiring import PERSONAL_CONCURRENCY, wire_personal

    with gr.Blocks() as demo:
        _, tab = build_page([BASE], BASE, "project", handlers.defaults(BASE))
        wire_personal(demo, tab, PersonalEvents(handlers))
    assert [t.id for t in demo.blocks.values() if isinstance(t, gr.Tab)][-2:] == ["personal", "about"]
    events = {fn.name: fn for fn in demo.fns.values()}
    used = {id(c) for fn in events.values() for c in (*fn.inputs, *fn.outputs)}
    used |= {c for fn in events.values() for c, _ in map(tuple, fn.targets)}
    components = [*tab.inputs.as_list(), tab.button, tab.message, tab.token, *tab.view.as_list()]
    assert [c for c in components if id(c) not in used and c._id not in used] == []
    rank = events["on_personal_rank"]
    assert rank.inputs == tab.inputs.as_list() and rank.concurrency_limit == PERSONAL_CONCURRENCY
    assert (tab.button._id, "click") in map(tuple, rank.targets)
    assert events["on_personal_poll"].show_progress == "hidden"
    assert tab.inputs.top_k.value == 2 and tab.inputs.base_id.value == BASE
    path = str(reviews(tmp_path / "mine.csv"))
    calls = {"on_personal_load": PersonalEvents(handlers).on_personal_load(None),
             "on_personal_file": PersonalEvents(handlers).on_personal_file(path),
             "on_personal_rank": PersonalEvents(handlers).on_personal_rank(*form_values(form(Path(path)))),
             "on_personal_poll": PersonalEvents(handlers).on_personal_poll("")}
    for name, returned in calls.items():
        assert len(events[name].outputs) == len(returned), name


def test_escaped_text_keeps_apostrophes_readable_and_forms_no_markup():
    """Quotes stay quotes (an entity would show as its characters once its # is escaped); no markup forms."""
    sentence = f"The file '{HOSTILE_COLUMN}.csv' has no column '{BOLD}'."
    out = escaped(sentence)
    assert out == markdown_text(sentence) and out.startswith("The file '") and "&\\#" not in out
    assert "<img" not in out and "**" not in out


def test_column_names_are_used_exactly_as_the_file_has_them(handlers, store, tmp_path):
    path = write_csv(tmp_path / "spaced.csv", [" text", "label "], [[f"row {i}", "ab"[i % 2]] for i in range(6)])
    found = handlers.columns(str(path))
    assert (found.text, found.label) == (" text", "label ")
    with pytest.raises(PersonalRefused, match="has no column 'text'"):
        handlers.rank(form(path, label_column="label "))
    assert handlers.rank(form(path, text_column=" text", label_column="label ")).summary["rows"] == 6
    assert not path.exists()  # queued: its rows are in the store, the uploaded copy is gone


def test_a_client_queues_at_most_its_hourly_limit_and_a_refusal_spends_none(store, settings, tmp_path):
    handlers = PersonalHandlers(store, replace(settings, personal_top_k=2, personal_limit_per_hour=2),
                                uploads=tmp_path)
    def good():  # each upload is deleted once queued: a new one every time
        return form(reviews(tmp_path / "mine.csv"))

    with pytest.raises(PersonalRefused):
        handlers.rank(form(reviews(tmp_path / "one.csv", labels=("pos",))), submitter="10.0.0.1")  # not counted
    for _ in range(2):
        handlers.rank(good(), submitter="10.0.0.1")
    wide = write_csv(tmp_path / "wide.csv", [f"c{i}" for i in range(40_000)], [["x"] * 40_000])
    reading = []
    handlers.read = lambda f: reading.append(f)  # a client at its limit gets its sentence before any file is read
    with pytest.raises(PersonalRefused, match="queued 2 personal rankings in the last hour"):
        handlers.rank(form(wide), submitter="10.0.0.1")
    assert reading == []
    del handlers.read
    handlers.rank(good(), submitter="10.0.0.2")  # another client has its own limit
    assert len(personal_jobs(store)) == 3


def test_the_data_line_clips_class_names_and_counts_past_twenty(handlers, store, tmp_path):
    from ui.personal import data_markdown

    labels = [f"{'L' * 190}{i:03d}" for i in range(30)]
    request = handlers.rank(form(write_csv(tmp_path / "wide.csv", ["text", "label"],
                                           [[f"row {i}", labels[i % 30]] for i in range(60)])))
    line = data_markdown(request)
    assert "30 classes" in line and "and 10 more" in line and len(line) < 2_000
    assert "L" * 41 not in line and "…" in line


def fake_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def test_named_models_are_queued_with_the_base_first_and_a_bad_name_is_refused(handlers, store, tmp_path):
    request = handlers.rank(form(reviews(tmp_path / "mine.csv"), models="alice/strong,\nghost/elsewhere@v2"))
    assert [m["name"] for m in request.models] == ["alice/strong", "ghost/elsewhere"]
    assert request.models[1]["revision"] == "v2" and request.top_k == 0
    assert handlers.expected_models(request) == 3 and request.summary["not_fetchable"] == {}  # the Hub answers
    for bad, reason in (("./mine", "this server takes no local folders"), ("a/b/c", "neither a Hub model id"),
                        (BASE, "Name at least one model besides the base")):
        with pytest.raises(PersonalRefused, match=reason):
            handlers.rank(form(reviews(tmp_path / "again.csv"), models=bad))
    assert len(personal_jobs(store)) == 1


def test_with_no_hub_the_page_says_which_models_cannot_be_fetched_and_refuses_under_two(store, settings, tmp_path):
    root = tmp_path / "models"
    fake_checkpoint(root / "first")
    fake_checkpoint(root / "second")
    offline = replace(settings, hub_endpoint="http://127.0.0.1:9", models_dir=root)
    events = PersonalEvents(PersonalHandlers(store, offline, uploads=tmp_path))
    message, token, *_ = events.on_personal_rank(*form_values(form(reviews(tmp_path / "mine.csv"),
                                                                   models="./first, ./second, <b>x</b>/y")))
    assert message.startswith("**Not queued.**") and "neither a Hub model id" in message and "<b>" not in message
    message, token, *_ = events.on_personal_rank(*form_values(form(reviews(tmp_path / "mine.csv"),
                                                                   models="./first, ./second, alice/strong")))
    assert message.startswith("**Queued.**") and token
    assert ("**Cannot be fetched now**, so listed without a rank: org/base, alice/strong: not in this server's "
            "cache, and the Hub cannot be reached.") in message.replace("\\", "")
    assert str(tmp_path) not in message
    message, *_ = events.on_personal_rank(*form_values(form(reviews(tmp_path / "mine.csv"), models="./first")))
    assert message.startswith("**Not queued.** Only 1 of the 2 models can be fetched now")
