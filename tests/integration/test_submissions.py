"""Submissions against a real Hub-compatible HTTP server and a real store file: every way a submission is
refused (with its own message, storing nothing), the per-submitter rate limit, and concurrent submissions."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from data.errors import StoreError, SubmissionRejected
from data.hub import HubClient
from data.local_hub import FaultPlan, LocalHub
from data.records import ArchSignature, BaseModel, JobStatus, Score
from data.selection import aliases_of
from data.settings import Settings
from data.store import Store
from data.submissions import submit
from tests.helpers.hub_population import (
    BASE_ID,
    BERT,
    LEGACY_ID,
    MAX_PARAMS,
    ROBERTA,
    UNTAGGED,
    WEIGHTS,
    add_base,
    add_shape,
    shape_named,
)
from ui.handlers import AppHandlers

CLOSED = "http://127.0.0.1:9"
GOOD = "tagged-org/good"  # already queued (and scored) in the catalogue's store, so that store is not empty
TAGS = shape_named("tagged").tags
MANY = 200
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def _add(hub: LocalHub, repo_id: str, config: dict | bytes | None, *, tags=TAGS, extra: dict | None = None) -> None:
    files = {"model.safetensors": WEIGHTS, **(extra or {})}
    if config is not None:
        files["config.json"] = config if isinstance(config, bytes) else json.dumps(config).encode()
    hub.add_model(repo_id, files=files, tags=tags, parameters=124_647_170)


@pytest.fixture(scope="module")
def hub():
    hub = LocalHub()
    add_base(hub)
    for name in ("tagged", "untagged", "gated", "private", "pickle-only", "no-weights", "adapter", "quantized",
                 "merge", "remote-code", "broken-config", "no-config", "oversize", "disabled", "roberta-large",
                 "tagged-mismatch", "other-base"):
        add_shape(hub, shape_named(name), f"{name}-org/{name}-model", downloads=7)
    add_shape(hub, shape_named("tagged"), GOOD, downloads=7)
    _add(hub, "extra/trust-remote-code", {**ROBERTA, "trust_remote_code": True})
    _add(hub, "extra/quantization-config", {**ROBERTA, "quantization_config": {"quant_method": "gptq", "bits": 4}})
    _add(hub, "extra/untagged-adapter", None, tags=UNTAGGED,
         extra={"adapter_config.json": json.dumps({"base_model_name_or_path": BASE_ID}).encode(),
                "adapter_model.safetensors": WEIGHTS})
    _add(hub, "extra/config-is-a-list", b"[]")
    _add(hub, "extra/config-not-utf8", b"\xff\xfe\x00{")
    _add(hub, "extra/no-model-type", {k: v for k, v in ROBERTA.items() if k != "model_type"})
    _add(hub, "extra/bert-config", {**BERT, "architectures": ["BertForMaskedLM"]}, tags=UNTAGGED)
    _add(hub, "faulty/model", ROBERTA)
    hub.set_faults(FaultPlan(rate=1.0, kinds=("500",), only_paths=("/api/models/faulty/",)))
    for i in range(MANY):
        add_shape(hub, shape_named("tagged"), f"many-org{i % 7}/model-{i:03d}", downloads=i)
    for i in range(8):
        add_shape(hub, shape_named("untagged"), f"rl/model-{i}", downloads=i)
    with hub:
        yield hub


@pytest.fixture
def hub_settings(settings, hub):
    return replace(settings, hub_endpoint=hub.url, crawl_max_retries=1, max_params=MAX_PARAMS)


def new_store(path, *, with_base: bool = True) -> Store:
    store = Store(path)
    if with_base:
        store.upsert_base(BaseModel(repo_id=BASE_ID, sha="b" * 40, aliases=aliases_of(BASE_ID),
                                    signature=ArchSignature.from_config(ROBERTA), num_params=124_697_433))
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory, hub):
    """One store for the whole catalogue (each case checks that it changed nothing), holding a model and a score."""
    settings = Settings(hub_endpoint=hub.url, cache_dir=tmp_path_factory.mktemp("cache"), max_params=MAX_PARAMS)
    store = new_store(tmp_path_factory.mktemp("catalogue") / "lb.db")
    accepted = submit(GOOD, None, HubClient(settings), store, settings)
    store.add_scores([Score(repo_id=GOOD, revision=accepted.sha, scorer="linear_probe", metric="accuracy",
                            value=0.9, target="sst2", seed=0, base_id=BASE_ID)])
    return store


def dump(store: Store) -> tuple:
    return store.data_version(), store.candidates(), store.queue.jobs(), store.scores()


URL = r"it is a URL; give only the id after huggingface\.co/"
EMPTY_PART = r"it has an empty part \(a leading, trailing or doubled '/'\)"


def _format(rule: str) -> str:
    return rf"^That is not a Hub model id: {rule}\. Use org/name"


# (repo_id, revision, settings changes, the message that names the rule)
CATALOGUE = [
    # syntax: no Hub request is made
    pytest.param("../x", None, {}, _format("it contains '\\.\\.'"), id="dot-dot-segment"),
    pytest.param("a/b/c", None, {}, _format(r"it has more than one '/' \(no path segments\)"), id="three-parts"),
    pytest.param("", None, {}, r"^Enter a model id such as", id="empty"),
    pytest.param(" \t \n ", None, {}, r"^Enter a model id such as", id="whitespace-only"),
    pytest.param("x" * 500, None, {}, r"^A model id has at most 193 characters\.$", id="500-characters"),
    pytest.param("org/" + "x" * 97, None, {}, _format("a part is longer than 96 characters"), id="part-too-long"),
    pytest.param("f\u0430cebook/x", None, {}, _format("it contains the non-ASCII character U\\+0430 CYRILLIC SMALL "
                                                      "LETTER A"), id="cyrillic-look-alike"),
    pytest.param("\uff46\uff41\uff43\uff45/x", None, {},
                 _format("it contains the non-ASCII character U\\+FF46 FULLWIDTH LATIN SMALL LETTER F"),
                 id="fullwidth"),
    pytest.param("<script>alert(1)</script>", None, {},
                 _format("it contains the character U\\+003C, which is not allowed"), id="script-tag"),
    pytest.param("org/name with space", None, {}, _format("it contains a space, which is not allowed"), id="space"),
    pytest.param("org//name", None, {}, _format(EMPTY_PART), id="double-slash"),
    pytest.param("/org/name", None, {}, _format(EMPTY_PART), id="leading-slash"),
    pytest.param("org/name/", None, {}, _format(EMPTY_PART), id="trailing-slash"),
    pytest.param("org/a--b", None, {}, _format("it contains '--'"), id="double-dash"),
    pytest.param("org/a..b", None, {}, _format("it contains '\\.\\.'"), id="dot-dot-in-part"),
    pytest.param("org/na\x00me", None, {}, _format("it contains a null byte, which is not allowed"), id="null-byte"),
    pytest.param("org/na\nme", None, {}, _format("it contains a line break, which is not allowed"), id="newline"),
    pytest.param("https://huggingface.co/org/x", None, {}, _format(URL), id="url"),
    pytest.param("huggingface.co/org/x", None, {}, _format(URL), id="url-without-scheme"),
    pytest.param("-org/x", None, {}, _format("each part must start and end with a letter or a digit"),
                 id="leading-dash"),
    pytest.param(GOOD, "../main", {}, r"^That is not a valid revision", id="revision-dot-dot"),
    pytest.param(GOOD, "main..dev", {}, r"^That is not a valid revision", id="revision-range"),
    pytest.param(GOOD, "m\u0430in", {}, r"^That is not a valid revision", id="revision-look-alike"),
    # what the Hub says about the repo
    pytest.param("nobody/nothing", None, {}, r"^nobody/nothing was not found on the Hub", id="nonexistent"),
    pytest.param(GOOD, "no-such-branch", {}, r"has no revision 'no-such-branch'\.$", id="nonexistent-branch"),
    pytest.param("gated-org/gated-model", None, {}, r"the model is gated and no token with access", id="gated"),
    pytest.param("private-org/private-model", None, {}, r"was not found on the Hub \(or it is private\)",
                 id="private"),
    pytest.param("disabled-org/disabled-model", None, {}, r"the model is disabled on the Hub", id="disabled"),
    pytest.param("pickle-only-org/pickle-only-model", None, {}, r"only pickle weights \(\.bin/\.pt\)",
                 id="pickle-only"),
    pytest.param("no-weights-org/no-weights-model", None, {}, r"the repo has no model weights", id="no-weights"),
    pytest.param("oversize-org/oversize-model", None, {}, r"more parameters than this leaderboard scores",
                 id="oversize"),
    pytest.param(GOOD, None, {"max_params": 1_000_000}, r"more parameters than this leaderboard scores",
                 id="oversize-low-max-params"),
    pytest.param("adapter-org/adapter-model", None, {}, r"is an adapter, not a full finetune", id="adapter-tagged"),
    pytest.param("extra/untagged-adapter", None, {}, r"is an adapter, not a full finetune",
                 id="adapter-config-json"),
    pytest.param("quantized-org/quantized-model", None, {}, r"the model is quantized", id="quantized-tagged"),
    pytest.param("extra/quantization-config", None, {}, r"the model is quantized", id="quantization-config"),
    pytest.param("merge-org/merge-model", None, {}, r"is a merge of several models", id="merge"),
    pytest.param(BASE_ID, None, {}, r"is a base model: it is the baseline row", id="base-itself"),
    pytest.param(LEGACY_ID, None, {}, r"^roberta-base is a base model", id="base-by-legacy-id"),
    # what its config.json says
    pytest.param("remote-code-org/remote-code-model", None, {}, r"needs custom code \(trust_remote_code\)",
                 id="remote-code-auto-map"),
    pytest.param("extra/trust-remote-code", None, {}, r"needs custom code \(trust_remote_code\)",
                 id="remote-code-flag"),
    pytest.param("no-config-org/no-config-model", None, {}, r"the repo has no config\.json", id="no-config"),
    pytest.param("broken-config-org/broken-config-model", None, {}, r"config\.json is not a valid model config",
                 id="truncated-config"),
    pytest.param("extra/config-is-a-list", None, {}, r"config\.json is not a valid model config",
                 id="config-not-an-object"),
    pytest.param("extra/config-not-utf8", None, {}, r"config\.json is not a valid model config",
                 id="config-not-utf8"),
    pytest.param("extra/no-model-type", None, {}, r"config\.json is not a valid model config", id="no-model-type"),
    pytest.param("roberta-large-org/roberta-large-model", None, {},
                 r"is a roberta model \(hidden 1024, 24 layers, vocab 50265\) that matches none",
                 id="wrong-hidden-size"),
    pytest.param("tagged-mismatch-org/tagged-mismatch-model", None, {}, r"hidden 1024.* matches none of the "
                 r"architectures ranked here: FacebookAI/roberta-base\.$", id="tagged-but-wrong-architecture"),
    pytest.param("extra/bert-config", None, {}, r"is a bert model \(hidden 768, 12 layers, vocab 30522\) that "
                 r"matches none", id="wrong-model-type"),
    # the Hub itself
    pytest.param(GOOD, None, {"hub_endpoint": CLOSED}, r"^The Hub cannot be reached right now \(.*ConnectError",
                 id="hub-unreachable"),
    pytest.param("faulty/model", None, {}, r"^The Hub cannot be reached right now \(.*HTTP 500", id="hub-erroring"),
]


@pytest.mark.parametrize(("repo_id", "revision", "changes", "reason"), CATALOGUE)
def test_a_bad_submission_is_refused_with_its_reason_and_stores_nothing(
    hub_settings, store, repo_id, revision, changes, reason
):
    settings = replace(hub_settings, **changes)
    before = dump(store)
    with pytest.raises(SubmissionRejected, match=reason):
        submit(repo_id, revision, HubClient(settings), store, settings, submitter="mallory")
    assert dump(store) == before


def test_every_skip_reason_has_its_own_sentence_for_the_user():
    """Each verdict the shared rules can give (data.selection) is explained to a submitter in its own words;
    an architecture mismatch is written out with the model's and the bases' shapes instead."""
    from data.records import SkipReason
    from data.submissions import SKIP_MESSAGES

    assert set(SKIP_MESSAGES) == set(SkipReason) - {SkipReason.ARCHITECTURE_MISMATCH}
    assert len(set(SKIP_MESSAGES.values())) == len(SKIP_MESSAGES)


def test_nothing_is_accepted_before_a_base_is_crawled(tmp_path, hub_settings):
    store = new_store(tmp_path / "empty.db", with_base=False)
    before = dump(store)
    with pytest.raises(SubmissionRejected, match="No base model has been crawled yet"):
        submit(GOOD, None, HubClient(hub_settings), store, hub_settings)
    assert dump(store) == before


def test_the_rate_limit_counts_new_models_per_submitter_per_rolling_hour(tmp_path, hub, hub_settings):
    settings = replace(hub_settings, submit_limit_per_hour=3)
    store, client = new_store(tmp_path / "lb.db"), HubClient(settings)

    def send(i: int, who: str, at: timedelta):
        return submit(f"rl/model-{i}", None, client, store, settings, submitter=who, now=T0 + at)

    for bad in ("../x", "nobody/nothing", "rl/model-0@main"):  # refusals are attempts, not new models
        with pytest.raises(SubmissionRejected):
            submit(bad, None, client, store, settings, submitter="alice", now=T0)
    first = [send(i, "alice", timedelta(minutes=i)) for i in range(3)]
    assert all(s.is_new for s in first) and len(store.queue.jobs()) == 3 * len(settings.crawl_scorers)

    before = dump(store)
    hub.reset_requests()
    with pytest.raises(SubmissionRejected, match=r"^Rate limit: at most 3 new models per submitter per hour\. "
                                                 r"You may submit again at 2025-01-01 13:00 UTC \(in 50 min\)\.$"):
        send(3, "alice", timedelta(minutes=10))
    assert dump(store) == before and not hub.requests  # refused before asking the Hub

    again = send(0, "alice", timedelta(minutes=11))  # already queued: not refused, not counted, nothing written
    assert not again.is_new and again.jobs == first[0].jobs and dump(store) == before

    bob = send(3, "bob", timedelta(minutes=12))
    assert bob.is_new and len(store.queue.jobs()) == 4 * len(settings.crawl_scorers)

    late = send(4, "alice", timedelta(hours=1))  # the first submission (12:00) has left the window
    assert late.is_new
    with pytest.raises(SubmissionRejected, match=r"again at 2025-01-01 13:01 UTC \(in 1 min\)"):
        send(5, "alice", timedelta(hours=1, seconds=1))
    assert send(5, "alice", timedelta(hours=1, minutes=1)).is_new
    assert submit("rl/model-6", None, client, store, settings, now=T0).is_new  # anonymous: no limit


def test_a_submission_that_fails_to_be_stored_does_not_count(tmp_path, hub_settings, monkeypatch):
    settings = replace(hub_settings, submit_limit_per_hour=1)
    store, client = new_store(tmp_path / "lb.db"), HubClient(settings)

    def broken(*args, **kwargs):
        raise StoreError("disk full")

    monkeypatch.setattr(store.queue, "enqueue", broken)
    with pytest.raises(StoreError):
        submit("rl/model-0", None, client, store, settings, submitter="carol", now=T0)
    monkeypatch.undo()
    assert submit("rl/model-0", None, client, store, settings, submitter="carol", now=T0).is_new


def test_the_app_handler_passes_the_submitter_on(tmp_path, hub_settings):
    handlers = AppHandlers(new_store(tmp_path / "lb.db"), replace(hub_settings, submit_limit_per_hour=1))
    who = "198.51.100.7"
    assert handlers.submit("rl/model-7", None, submitter=who).startswith("Queued")
    assert "already queued" in handlers.submit("rl/model-7", None, submitter=who)
    with pytest.raises(SubmissionRejected, match="^Rate limit: at most 1 new models"):
        handlers.submit("rl/model-6", None, submitter=who)
    assert handlers.submit("rl/model-6", None).startswith("Queued")  # no submitter: no limit


def _run_all(calls, workers: int = 32) -> list:
    """Run every call on a pool of threads that start together; a refusal is returned, not raised."""
    go = threading.Event()

    def run(call):
        go.wait(timeout=10)
        try:
            return call()
        except SubmissionRejected as e:
            return e

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run, call) for call in calls]
        go.set()
        return [f.result() for f in futures]


def test_200_concurrent_submissions_of_one_model_queue_it_once(tmp_path, hub_settings):
    store = new_store(tmp_path / "lb.db")
    repo_id = "many-org0/model-000"
    results = _run_all([lambda: submit(repo_id, None, HubClient(hub_settings), store, hub_settings)] * MANY)
    assert not [r for r in results if isinstance(r, Exception)]
    jobs = store.queue.jobs()
    assert sorted(j.scorer for j in jobs) == sorted(hub_settings.crawl_scorers)
    assert {r.jobs for r in results} == {tuple(jobs)}
    assert sum(r.is_new for r in results) == 1
    assert [c.repo_id for c in store.candidates()] == [repo_id]
    assert store.integrity_check() == "ok"


def test_200_concurrent_submissions_of_different_models_lose_none(tmp_path, hub_settings):
    store = new_store(tmp_path / "lb.db")
    settings = replace(hub_settings, submit_limit_per_hour=20)
    client = HubClient(settings)  # one client shared by every thread
    calls = [lambda i=i: submit(f"many-org{i % 7}/model-{i:03d}", None, client, store, settings,
                                submitter=f"user-{i % 10}", now=T0) for i in range(MANY)]
    results = _run_all(calls)
    assert not [r for r in results if isinstance(r, Exception)] and all(r.is_new for r in results)
    jobs = store.queue.jobs()
    assert len(jobs) == MANY * len(settings.crawl_scorers) == len({(j.repo_id, j.scorer) for j in jobs})
    assert {j.id for r in results for j in r.jobs} == {j.id for j in jobs}
    assert {j.status for j in jobs} == {JobStatus.PENDING} and len(store.candidates()) == MANY
    assert store.integrity_check() == "ok"
    with pytest.raises(SubmissionRejected, match="^Rate limit: at most 20 new models"):  # each user used all 20
        submit("rl/model-0", None, client, store, settings, submitter="user-3", now=T0)


def test_concurrent_new_models_from_one_submitter_stop_exactly_at_the_limit(tmp_path, hub_settings):
    store = new_store(tmp_path / "lb.db")
    settings = replace(hub_settings, submit_limit_per_hour=3)
    calls = [lambda i=i: submit(f"many-org{i % 7}/model-{i:03d}", None, HubClient(settings), store, settings,
                                submitter="eve", now=T0) for i in range(40)]
    results = _run_all(calls)
    refused = [r for r in results if isinstance(r, SubmissionRejected)]
    assert len(refused) == 37 and all(r.reason.startswith("Rate limit: at most 3") for r in refused)
    assert len(store.queue.jobs()) == 3 * len(settings.crawl_scorers) and len(store.candidates()) == 3


def test_refused_attempts_count_too_and_the_count_lives_in_the_store(tmp_path, hub, hub_settings):
    """A client cannot multiply traffic to the Hub with refused submissions, nor reset its count by a restart."""
    settings = replace(hub_settings, submit_attempts_per_hour=4)
    path = tmp_path / "lb.db"
    new_store(path)
    for i in range(4):
        with pytest.raises(SubmissionRejected, match="was not found on the Hub"):
            submit(f"nobody/nothing-{i}", None, HubClient(settings), Store(path), settings, submitter="eve",
                   now=T0 + timedelta(minutes=i))
    hub.reset_requests()
    restarted = Store(path)  # another process, or the app after a restart
    with pytest.raises(SubmissionRejected, match=r"^Rate limit: at most 4 submission attempts per submitter per "
                                                 r"hour \(refused ones included\)\. You may submit again at "
                                                 r"2025-01-01 13:00 UTC \(in 50 min\)\.$"):
        submit("rl/model-0", None, HubClient(settings), restarted, settings, submitter="eve",
               now=T0 + timedelta(minutes=10))
    assert not hub.requests and restarted.queue.jobs() == []
    assert submit("rl/model-0", None, HubClient(settings), restarted, settings, submitter="eve",
                  now=T0 + timedelta(hours=1)).is_new  # the first attempt has left the window
    assert submit("rl/model-1", None, HubClient(settings), restarted, settings, submitter="frank",
                  now=T0 + timedelta(minutes=10)).is_new  # others are not affected

