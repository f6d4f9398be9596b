"""Every UI handler as a plain function: leaderboard, exports, model page, insights, submit, jobs."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pandas as pd
import pytest

from data.errors import SubmissionRejected
from data.local_hub import LocalHub
from data.metrics import PROJECT_SOURCE
from data.records import JobStatus
from tests.helpers.leaderboard_store import BASE, EVIL, build_store
from tests.helpers.study_store import BASE as STUDY_BASE
from tests.helpers.study_store import build_study_store
from tests.helpers.tiny_models import shared_root, tiny_checkpoints
from ui import compare
from ui.board_cache import BoardKey
from ui.handlers import AppHandlers
from ui.views import ViewQuery

FINETUNE_TAGS = ("transformers", "bert", f"base_model:{BASE}", f"base_model:finetune:{BASE}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    ckpt = tiny_checkpoints(shared_root(tmp_path_factory) / "tiny")
    hub = LocalHub()
    hub.add_files_from_dir(BASE, ckpt["bert-base"], tags=("transformers", "bert"))
    hub.add_files_from_dir("eve/tiny-bert", ckpt["bert-candidate"], tags=FINETUNE_TAGS, downloads=3)
    hub.add_files_from_dir("eve/roberta", ckpt["roberta-candidate"], tags=("roberta",))
    pickle_dir = ckpt["bert-candidate"]
    hub.add_model("eve/pickled", files={"config.json": (pickle_dir / "config.json").read_bytes(),
                                         "pytorch_model.bin": b"pickle"}, tags=FINETUNE_TAGS)
    with hub:
        yield hub


@pytest.fixture
def handlers(tmp_path, settings, hub):
    store = build_store(tmp_path / "lb.db")
    return AppHandlers(store, replace(settings, hub_endpoint=hub.url, crawl_max_retries=1))


def test_default_selection_and_leaderboard(handlers):
    assert handlers.default_selection() == BoardKey(BASE, PROJECT_SOURCE)  # the typed key the rest receives
    assert handlers.default_selection().base_id == BASE
    assert handlers.default_selection("nope", "nope") == (BASE, PROJECT_SOURCE)
    frame, datatypes, status = handlers.leaderboard(BoardKey(BASE, PROJECT_SOURCE), ViewQuery(search="alice"))
    assert len(frame) == 2 and "alice/strong" in frame.iloc[1]["model"]
    assert "Showing 1 of 1 matching models" in status and len(datatypes) == len(frame.columns)
    controls = handlers.controls(BoardKey(BASE, PROJECT_SOURCE))
    assert controls.licenses == ["apache-2.0", "mit"] and controls.models[0] == BASE
    assert handlers.leaderboard(BoardKey(None, PROJECT_SOURCE), ViewQuery())[2] == "No leaderboard yet."


def test_shown_ids_are_the_rows_of_the_view_baseline_first(tmp_path, settings):
    """A clicked row's index maps back to its model: the ids are the table's rows, in its order."""
    handlers = AppHandlers(build_store(tmp_path / "lb.db"), settings)
    query = ViewQuery(sort_by="downloads", max_rows="100")
    ids = handlers.shown_ids(BoardKey(BASE, PROJECT_SOURCE), query)
    assert ids == [BASE, "dave/partial", "alice/strong", "bob/middling", "carol/weak", EVIL]
    frame, _, _ = handlers.leaderboard(BoardKey(BASE, PROJECT_SOURCE), query)
    assert [f"[{repo_id}]" in cell for repo_id, cell in zip(ids, frame["model"], strict=True)] == [True] * 5 + [False]
    assert handlers.shown_ids(BoardKey(BASE, PROJECT_SOURCE), ViewQuery(search="bob")) == [BASE, "bob/middling"]
    assert handlers.shown_ids(BoardKey(None, PROJECT_SOURCE), ViewQuery()) == []


def test_controls_offer_size_buckets_and_the_top_model(handlers):
    controls = handlers.controls(BoardKey(BASE, PROJECT_SOURCE))
    assert controls.top_model == "alice/strong"  # rank 1, not the base's row
    assert [value for _, value in controls.sizes] == ["< 50M", "50–150M", "150–500M", "> 500M", "unknown"]
    assert controls.sizes[-1] == ("unknown (1)", "unknown")
    frame, _, status = handlers.leaderboard(BoardKey(BASE, PROJECT_SOURCE), ViewQuery(sizes=("unknown",)))
    assert list(frame["model"])[1:] == ["[dave/partial](https://huggingface.co/dave/partial)"]
    assert "Showing 1 of 1 matching models" in status
    none = handlers.controls(BoardKey(None, PROJECT_SOURCE))
    assert none.top_model is None and none.sizes[0] == ("< 50M (0)", "< 50M")


def test_compare_two_to_four_models(handlers):
    out = handlers.compare(BoardKey(BASE, PROJECT_SOURCE), ["bob/middling", "alice/strong"])
    assert out.header.startswith("### Comparing 2 models on org/base")
    assert [t.name for t in out.gains.data] == ["bob/middling", "alice/strong"]
    assert list(out.table["rank"]) == [2, 1]
    assert len(out.datatypes) == len(out.widths) == len(out.table.columns)
    assert out.share == ("**Link to this comparison:** [`?base=org/base&source=project&compare=bob/middling,"
                            "alice/strong`](?base=org/base&source=project&compare=bob/middling,alice/strong)")
    for ids, reason in [(["alice/strong"], "at least 2"), (["a/1", "a/2", "a/3", "a/4", "a/5"], "at most 4"),
                        (["alice/strong", "nobody/else"], "Not on the org/base leaderboard")]:
        with pytest.raises(compare.CompareRejected, match=reason):
            handlers.compare(BoardKey(BASE, PROJECT_SOURCE), ids)
    with pytest.raises(compare.CompareRejected, match="no leaderboard"):
        handlers.compare(BoardKey(None, PROJECT_SOURCE), ["alice/strong", "bob/middling"])


def test_add_to_compare_takes_models_of_the_board_only(handlers):
    assert handlers.add_to_compare(BoardKey(BASE, PROJECT_SOURCE), [], "alice/strong") == ("alice/strong",)
    assert handlers.add_to_compare(BoardKey(BASE, PROJECT_SOURCE), ["alice/strong"], BASE) == ("alice/strong", BASE)
    with pytest.raises(compare.CompareRejected, match="nobody/else is not on the org/base leaderboard"):
        handlers.add_to_compare(BoardKey(BASE, PROJECT_SOURCE), ["alice/strong"], "nobody/else")
    with pytest.raises(compare.CompareRejected, match="already has 4"):
        handlers.add_to_compare(BoardKey(BASE, PROJECT_SOURCE), ["alice/strong", "bob/middling", "carol/weak", EVIL],
                                "dave/partial")


def test_exports_of_the_view_and_of_the_full_ranking(handlers):
    view = handlers.export(BoardKey(BASE, PROJECT_SOURCE), ViewQuery(search="carol"), "csv")
    frame = pd.read_csv(view)
    assert list(frame["repo_id"]) == [BASE, "carol/weak"] and view.name.startswith("org_base-project-view")
    full = handlers.export(BoardKey(BASE, PROJECT_SOURCE), None, "json")
    doc = json.loads(full.read_text())
    assert [r["repo_id"] for r in doc["rows"]][:2] == [BASE, "alice/strong"] and len(doc["rows"]) == 6
    parquet = handlers.export(BoardKey(BASE, PROJECT_SOURCE), None, "parquet")
    assert len(pd.read_parquet(io.BytesIO(parquet.read_bytes()))) == 6
    with pytest.raises(ValueError, match="unknown export format"):
        handlers.export(BoardKey(BASE, PROJECT_SOURCE), None, "xls")


def test_model_page(handlers):
    page = handlers.model_page(BoardKey(BASE, PROJECT_SOURCE), "alice/strong")
    assert "rank 1 on org/base" in page.header and "+6.00" in page.header  # mean gain (0.85-0.79)*100
    assert "| beats the base beyond seed noise | yes |" in page.header
    assert [round(v, 1) for v in page.chains["llc"]] == [4.0, 5.0, 6.0] and "nβ 123.4" in page.free_energy
    assert set(page.revisions["scorer"]) == {"intertraining", "linear_probe", "free_energy"}
    assert len(page.gains.data) == 1 and sorted(page.gains.data[0].x) == pytest.approx([5.0, 7.0])
    evil = handlers.model_page(BoardKey(BASE, PROJECT_SOURCE), EVIL)
    assert "<img" not in evil.header and "&lt;img" in evil.header
    missing = handlers.model_page(BoardKey(BASE, PROJECT_SOURCE), "nobody/else")
    assert "Not on the org/base leaderboard" in missing.header
    base = handlers.model_page(BoardKey(BASE, PROJECT_SOURCE), BASE)
    assert "the base model" in base.header
    assert page.share == ("**Link to this model page:** [`?base=org/base&source=project&model=alice/strong`]"
                             "(?base=org/base&source=project&model=alice/strong)")
    assert "model=%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E" in evil.share and "<img" not in evil.share
    assert handlers.model_page(BoardKey(BASE, PROJECT_SOURCE), "").share == ""


def test_insights(handlers):
    out = handlers.insights(BoardKey(BASE, PROJECT_SOURCE))
    title = out.free_energy.layout.title.text
    assert "Spearman ρ = -0.95" in title  # by hand: gain ranks 4, 2.5, 2.5, 1 vs 1..4
    # the line above each figure adds Pearson's r, never the title's sentence again
    assert "Pearson r" in out.free_energy_text and "Spearman" not in out.free_energy_text
    assert "n = 4" in out.free_energy_text and out.probe_text.startswith("probe accuracy vs mean gain: Pearson")
    assert out.beats_base.data and out.heatmap.data


def test_insights_show_the_study_only_for_study_shaped_data(tmp_path, settings, handlers):
    out = handlers.insights(BoardKey(BASE, PROJECT_SOURCE))  # candidates without dataset: tags: no study section
    assert out.study.study == "" and "no source × target study" in out.study.study_matrix.layout.annotations[0].text
    gains = {s: {t: 0.01 * i - 0.005 * j for j, t in enumerate(("mrpc", "rte", "sick", "sst2", "trec"))}
             for i, s in enumerate(("mnli", "rte", "sick", "trec"))}
    study = AppHandlers(build_study_store(tmp_path / "study.db", gains), settings)
    out = study.insights(BoardKey(STUDY_BASE, PROJECT_SOURCE))
    assert out.study.study.startswith(f"### Source × target study: {STUDY_BASE}")
    assert "**Beat the base beyond seed noise:**" in out.study.study and "not measured" in out.study.study
    heat = out.study.study_matrix.data[0]
    assert list(heat.y) == ["mnli", "rte", "sick", "trec"] and list(heat.x) == ["mrpc", "rte", "sick", "sst2", "trec"]
    assert float(heat.z[3][0]) == pytest.approx(3.0)  # trec on mrpc: 0.03 -> 3 points
    assert len(out.study.study_matrix.layout.shapes) == 3  # rte, sick, trec are sources and targets


def test_submit_accepts_queues_once_and_reports_position(handlers, hub):
    message = handlers.submit("eve/tiny-bert", None)
    assert message.startswith("Queued **eve/tiny-bert**") and "Queue position: **1**" in message
    assert "already queued" in handlers.submit("eve/tiny-bert", "main")
    jobs = handlers.jobs()
    assert set(jobs["status"]) == {JobStatus.PENDING.value} and set(jobs["model"]) == {"eve/tiny-bert"}
    assert list(jobs["revision"]) == [hub.sha_of("eve/tiny-bert")[:8]] * 2
    assert handlers.job_counts() == "pending 2"
    candidate = handlers.store.get_candidate("eve/tiny-bert")
    assert candidate.base_id == BASE and candidate.sha == hub.sha_of("eve/tiny-bert")


@pytest.mark.parametrize(
    ("repo_id", "revision", "reason"),
    [
        ("", None, "Enter a model id"),
        ("../x", None, "not a Hub model id"),
        ("a/b/c", None, "not a Hub model id"),
        ("<script>alert(1)</script>", None, "not a Hub model id"),
        ("x" * 300, None, "at most 193 characters"),
        ("nobody/nothing", None, "was not found on the Hub"),
        ("eve/tiny-bert", "no-such-branch", "has no revision"),
        ("eve/tiny-bert", "../main", "not a valid revision"),
        ("eve/pickled", None, "only pickle weights"),
        ("eve/roberta", None, "matches none of the architectures"),
        (BASE, None, "is a base model"),
    ],
)
def test_submit_rejects_with_a_specific_reason_and_stores_nothing(handlers, repo_id, revision, reason):
    before = (handlers.store.queue.jobs(), handlers.store.candidates())
    with pytest.raises(SubmissionRejected, match=reason):
        handlers.submit(repo_id, revision)
    assert (handlers.store.queue.jobs(), handlers.store.candidates()) == before


def test_submit_says_plainly_when_the_hub_is_down(handlers):
    down = AppHandlers(handlers.store, replace(handlers.settings, hub_endpoint="http://127.0.0.1:9"))
    with pytest.raises(SubmissionRejected, match="The Hub cannot be reached right now"):
        down.submit("eve/tiny-bert", None)


def test_board_links_and_the_note_for_a_legacy_or_unknown_base_in_the_url(tmp_path):
    from data.records import Score
    from data.settings import Settings
    from data.store import Store
    from ui.handlers import AppHandlers

    store = Store(tmp_path / "lb.db")
    store.add_scores([Score(repo_id=r, revision="r", scorer="linear_probe", metric="probe_accuracy", target="nli",
                            value=0.5, config_hash="h", base_id="FacebookAI/roberta-base", source="published-2023")
                      for r in ("a/one", "b/two")])
    h = AppHandlers(store, Settings(db_path=store.db_path, cache_dir=tmp_path / "cache"))
    assert h.board_links() == ("**Leaderboards:** [FacebookAI/roberta\\-base · published-2023 · 2 scored]"
                               "(?base=FacebookAI/roberta-base&source=published-2023)")
    assert h.url_note("roberta-base", "FacebookAI/roberta-base") == (
        "roberta-base is FacebookAI/roberta-base on the Hub today; using FacebookAI/roberta-base.")
    assert h.url_note("FacebookAI/roberta-base", "FacebookAI/roberta-base") is None
    assert h.url_note("no/such", "FacebookAI/roberta-base") == (
        "There is no leaderboard for no/such; showing FacebookAI/roberta-base.")
    assert h.url_note(None, "FacebookAI/roberta-base") is None


# dave/partial has sst2 only (0.95: +10.00 points) and its card says it was trained on trec. By default (the
# zero-shot estimand) trec is left out of its mean gain: +10.00 over sst2, interval ± t_2 · 0.002 / √3 ≈ ± 0.50, and
# it ranks 1st. With the targets it was trained on included it misses trec: no mean gain, last (5th), and one model
# fewer beats the base (alice +6.00, bob and the HTML-named one +1.00 still do; carol -14.00 does not).
DAVE_TRAINED_ON_TREC = {"dave/partial": ("transformers", "dataset:trec")}
ZERO_SHOT_ORDER = [BASE, "dave/partial", "alice/strong", "bob/middling", EVIL, "carol/weak"]
INCLUDED_ORDER = [BASE, "alice/strong", "bob/middling", EVIL, "carol/weak", "dave/partial"]


@pytest.fixture
def trained(tmp_path, settings):
    return AppHandlers(build_store(tmp_path / "trained.db", tags=DAVE_TRAINED_ON_TREC), settings)


def test_the_table_and_its_controls_follow_include_seen(trained):
    for include_seen, order, beating, top in ((False, ZERO_SHOT_ORDER, 4, "dave/partial"),
                                              (True, INCLUDED_ORDER, 3, "alice/strong")):
        frame, _, status = trained.leaderboard(BoardKey(BASE, PROJECT_SOURCE), ViewQuery(), include_seen=include_seen)
        assert trained.shown_ids(BoardKey(BASE, PROJECT_SOURCE), ViewQuery(), include_seen=include_seen) == order
        dave = frame[frame["model"].str.contains("dave/partial", regex=False)].iloc[0]
        assert f"**{beating}** beat the base beyond seed noise" in status
        assert trained.controls(BoardKey(BASE, PROJECT_SOURCE), include_seen=include_seen).top_model == top
        if include_seen:
            assert pd.isna(dave["mean gain"]) and pd.isna(dave["rank"])  # listed, not ranked
            assert "Mean gains include the targets a model was trained on." in status
        else:
            assert (dave["rank"], dave["mean gain"], dave["gain CI low"], dave["trained on"]) == (1, 10.0, 9.5, 1)
            assert "Mean gains leave out the suite targets a model was trained on (1 model)." in status
    assert trained.shown_ids(BoardKey(BASE, PROJECT_SOURCE), ViewQuery()) == ZERO_SHOT_ORDER  # the default: zero-shot


def test_downloads_are_of_the_board_shown(trained):
    for include_seen, dave_gain in ((False, 0.10), (True, None)):
        for query in (None, ViewQuery(search="dave")):
            path = trained.export(BoardKey(BASE, PROJECT_SOURCE), query, "json", include_seen=include_seen)
            doc = json.loads(path.read_text())
            dave = {r["repo_id"]: r for r in doc["rows"]}["dave/partial"]
            assert doc["include_seen"] is include_seen and path.name.count("-include-seen") == include_seen
            assert dave["mean_gain"] == (pytest.approx(dave_gain) if dave_gain else None)
            assert dave["rank"] == (None if include_seen else 1)
    csv_view = trained.export(BoardKey(BASE, PROJECT_SOURCE), ViewQuery(search="alice"), "csv", include_seen=True)
    assert pd.read_csv(csv_view)["mean_gain"].tolist() == pytest.approx([0.0, 0.06])


def test_the_model_page_comparison_and_insights_rank_as_the_table(trained):
    zero_shot = trained.model_page(BoardKey(BASE, PROJECT_SOURCE), "dave/partial")
    included = trained.model_page(BoardKey(BASE, PROJECT_SOURCE), "dave/partial", include_seen=True)
    assert "rank 1 on org/base" in zero_shot.header
    assert "| mean gain | +10.00 (95% CI +9.50 to +10.50; n = 3 seeds, df = 2) |" in zero_shot.header
    assert "| suite targets trained on (left out of the mean gain) | 1 |" in zero_shot.header
    assert "unranked (no mean gain: not every suite target is scored) on org/base" in included.header
    assert "| beats the base beyond seed noise | – |" in included.header  # unmeasured, not "no"
    assert "trained on" not in included.header
    assert "include_seen" not in zero_shot.share
    assert "?base=org/base&source=project&include_seen=1&model=dave/partial" in included.share

    ids = ["dave/partial", "alice/strong"]
    assert "dave/partial): rank 1, mean gain +10.00" in trained.compare(BoardKey(BASE, PROJECT_SOURCE), ids).header
    compared = trained.compare(BoardKey(BASE, PROJECT_SOURCE), ids, include_seen=True)
    assert "dave/partial): unranked (no mean gain" in compared.header
    assert "alice/strong): rank 1, mean gain +6.00" in compared.header
    assert "&include_seen=1&compare=dave/partial,alice/strong" in compared.share

    for include_seen, ranked, beating in ((False, 5, 4), (True, 4, 3)):
        bars = trained.insights(BoardKey(BASE, PROJECT_SOURCE), include_seen=include_seen).beats_base.data
        assert (tuple(bars[0].x), tuple(bars[1].x)) == ((ranked,), (beating,))


def test_insights_show_the_personal_validation_under_the_study_of_its_base():
    from ui.handlers import personal_validation_markdown

    text = personal_validation_markdown("sentence-transformers/all-MiniLM-L6-v2")  # the bundled figures' base
    assert "#### Does personalising help?" in text and "| target | predictor |" in text
    assert "general rank: mean gain on the other targets" in text and "| sst2 |" in text
    assert personal_validation_markdown("someone/else") == ""
