"""HubClient against the local Hub: typed errors, retries that honour Retry-After, pagination, snapshots."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from data.errors import EntryNotFound, GatedModel, HubError, HubUnreachable, ModelNotFound, RevisionNotFound
from data.hub import HubClient
from data.local_hub import FaultPlan, LocalHub
from data.records import ModelRef

CONFIG = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 9}
TOKEN = "hf_secret"


@pytest.fixture
def hub():
    hub = LocalHub(page_size=3)
    hub.tokens = {TOKEN}
    for i in range(10):
        hub.add_model(f"org/m{i}", files={"config.json": json.dumps(CONFIG), "model.safetensors": b"w" * 16},
                      tags=("transformers", "bert", "base_model:org/base"), downloads=100 - i,
                      card_data={"license": "mit"}, parameters=1234)
    hub.add_model("org/gated", files={"config.json": "{}"}, tags=("bert",), gated="manual")
    hub.add_model("org/private", files={"config.json": "{}"}, tags=("bert",), private=True)
    with hub:
        yield hub


def _client(settings, hub, **overrides):
    return HubClient(replace(settings, hub_endpoint=hub.url, **overrides))


def test_listing_follows_pages_and_parses_metadata(settings, hub):
    client = _client(settings, hub)
    models = list(client.iter_models(filter=["base_model:org/base"]))
    assert [m.repo_id for m in models] == [f"org/m{i}" for i in range(10)]  # by downloads, every page
    first = models[0]
    assert first.sha == hub.sha_of("org/m0") and first.downloads == 100 and first.license == "mit"
    assert set(first.filenames) == {"config.json", "model.safetensors"} and first.num_params == 1234
    assert sum(1 for r in hub.requests if r.path == "/api/models") == 4  # 10 models, 3 per page
    assert [m.repo_id for m in client.iter_models(filter=["bert"], limit=4)] == [f"org/m{i}" for i in range(4)]


def test_private_models_are_listed_only_with_a_token(settings, hub):
    anonymous = {m.repo_id for m in _client(settings, hub).iter_models(filter=["bert"])}
    with_token = {m.repo_id for m in _client(settings, hub, hub_token=TOKEN).iter_models(filter=["bert"])}
    assert "org/private" not in anonymous and "org/private" in with_token and "org/gated" in anonymous


def test_typed_errors(settings, hub):
    client = _client(settings, hub)
    with pytest.raises(ModelNotFound):
        client.model_info("org/nope")
    with pytest.raises(ModelNotFound):
        client.model_info("org/private")
    with pytest.raises(RevisionNotFound):
        client.model_info("org/m1", revision="no-such-branch")
    with pytest.raises(EntryNotFound):
        client.read_file("org/m1", "missing.json", hub.sha_of("org/m1"))
    with pytest.raises(GatedModel):
        client.read_file("org/gated", "config.json", hub.sha_of("org/gated"))
    authorized = _client(settings, hub, hub_token=TOKEN)
    assert authorized.read_file("org/gated", "config.json", hub.sha_of("org/gated")) == b"{}"
    assert authorized.model_info("org/private").sha == hub.sha_of("org/private")


def test_model_info_resolves_main_and_old_shas(settings, hub):
    client = _client(settings, hub)
    old = hub.sha_of("org/m1")
    new = hub.add_model("org/m1", files={"config.json": json.dumps({**CONFIG, "hidden_size": 64})})
    assert client.model_info("org/m1").sha == new
    assert client.model_info("org/m1", revision=old).sha == old
    assert json.loads(client.read_file("org/m1", "config.json", old))["hidden_size"] == 32


def test_retries_honour_retry_after_and_then_give_up(settings, hub):
    sleeps: list[float] = []
    client = HubClient(replace(settings, hub_endpoint=hub.url, crawl_max_retries=3, crawl_backoff_max_s=60),
                       sleep=sleeps.append)
    hub.set_faults(FaultPlan(rate=1.0, kinds=("429",), retry_after_s=7))
    with pytest.raises(HubUnreachable, match="4 attempts"):
        client.model_info("org/m1")
    assert sleeps == [7, 7, 7]  # the server's Retry-After, not our own schedule

    sleeps.clear()
    hub.set_faults(FaultPlan(rate=1.0, kinds=("429",), retry_after_s=600))
    with pytest.raises(HubUnreachable):
        client.model_info("org/m1")
    assert sleeps == [60, 60, 60]  # capped by crawl_backoff_max_s

    sleeps.clear()
    hub.set_faults(FaultPlan(rate=1.0, kinds=("503", "truncated"), seed=1))
    with pytest.raises(HubUnreachable):
        list(client.iter_models(filter=["bert"]))
    base = settings.crawl_backoff_base_s
    assert len(sleeps) == 3 and all(0.5 * base * 2**i <= s <= 1.5 * base * 2**i for i, s in enumerate(sleeps))


def test_transient_faults_are_invisible_to_callers(settings, hub):
    client = _client(settings, hub, crawl_max_retries=12)
    hub.set_faults(FaultPlan(rate=0.5, kinds=("429", "500", "503", "truncated"), seed=3, retry_after_s=0))
    assert [m.repo_id for m in client.iter_models(filter=["base_model:org/base"])] == [f"org/m{i}" for i in range(10)]
    assert json.loads(client.read_file("org/m3", "config.json", hub.sha_of("org/m3"))) == CONFIG
    assert client.retries > 0


def test_client_errors_are_not_retried(settings, hub):
    sleeps: list[float] = []
    client = HubClient(replace(settings, hub_endpoint=hub.url), sleep=sleeps.append)
    with pytest.raises(HubError):
        client.model_info("org/nope")
    with pytest.raises(HubError):
        client.read_file("org/m1", "config.json", "0" * 40)
    assert sleeps == []


def test_unreachable_endpoint_is_a_clear_error(settings):
    client = HubClient(replace(settings, hub_endpoint="http://127.0.0.1:9", crawl_max_retries=1), sleep=lambda s: None)
    with pytest.raises(HubUnreachable, match="no usable answer after 2 attempts"):
        client.model_info("org/m1")


def test_snapshot_downloads_the_pinned_sha(settings, hub):
    client = _client(settings, hub)
    old = hub.sha_of("org/m2")
    hub.add_model("org/m2", files={"config.json": "{}", "model.safetensors": b"new"})
    local = client.snapshot(ModelRef("org/m2", old))
    assert json.loads((local / "config.json").read_text()) == CONFIG
    assert (local / "model.safetensors").read_bytes() == b"w" * 16
    assert str(settings.cache_dir) in str(local)


def test_an_interactive_client_gives_up_within_its_budget(settings, hub):
    """Submit's client: a slow or failing Hub costs a waiting person at most ``submit_timeout_s``."""
    import time

    from data.errors import HubTimeout

    interactive = HubClient.interactive(replace(settings, hub_endpoint=hub.url, submit_timeout_s=1.0))
    assert interactive.max_retries == 1 and interactive.timeout_s == 1.0
    hub.set_faults(FaultPlan(rate=1.0, kinds=("slow",), slow_s=5.0))
    started = time.monotonic()
    with pytest.raises(HubTimeout, match="the Hub did not answer in 1 s"):
        interactive.model_info("org/m1")
    assert time.monotonic() - started < 2.0
    hub.set_faults(FaultPlan(rate=1.0, kinds=("503",), retry_after_s=30))
    started = time.monotonic()
    with pytest.raises(HubUnreachable, match="2 attempts"):  # a Retry-After of 30 s is not waited for
        HubClient.interactive(replace(settings, hub_endpoint=hub.url, submit_timeout_s=1.0)).model_info("org/m1")
    assert time.monotonic() - started < 1.5
    hub.set_faults(None)
    assert HubClient.interactive(replace(settings, hub_endpoint=hub.url)).model_info("org/m1").repo_id == "org/m1"


def test_a_datasets_listing_comes_through_the_same_client(settings, hub, monkeypatch):
    """Datasets go through the one Hub access: the commit a revision names and the size of the data files (what a
    user's dataset is refused by before any download); a missing dataset, a bad revision and an offline machine
    are the client's typed errors, the missing one named as a dataset."""
    files = {"README.md": b"# toy", "train.csv": b"text,label\n" + b"a,0\n" * 50, "test.parquet": b"p" * 300}
    sha = hub.add_dataset("org/toy", files=files)
    listing = _client(settings, hub).dataset_listing("org/toy")
    assert (listing.repo_id, listing.sha) == ("org/toy", sha)
    assert listing.data_bytes == len(files["train.csv"]) + len(files["test.parquet"])  # the README is not data
    assert _client(settings, hub).dataset_listing("org/toy", sha).sha == sha
    with pytest.raises(ModelNotFound, match="no such dataset on the Hub"):
        _client(settings, hub).dataset_listing("org/none")
    with pytest.raises(RevisionNotFound):
        _client(settings, hub).dataset_listing("org/toy", "no-such-branch")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnreachable, match="HF_HUB_OFFLINE"):
        _client(settings, hub).dataset_listing("org/toy")
