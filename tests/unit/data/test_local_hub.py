"""The local Hub, driven by the real huggingface_hub client: known answers for each endpoint, error and fault."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import numpy as np
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    BadRequestError,
    DisabledRepoError,
    GatedRepoError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors.numpy import save as save_safetensors

from data.local_hub import FaultPlan, LocalHub

BASE = "FacebookAI/roberta-base"
TOKEN = "hf_secret"
ROBERTA_FINETUNES = [
    "alice/roberta-ft-0",
    "alice/roberta-ft-2",
    "bob/roberta-ft-1",
]  # by downloads, descending
CONFIG = {"architectures": ["RobertaForSequenceClassification"], "model_type": "roberta", "hidden_size": 32}


def finetune_tags(base: str = BASE) -> tuple[str, ...]:
    return ("transformers", "roberta", f"base_model:{base}", f"base_model:finetune:{base}")


def tiny_safetensors() -> bytes:
    """A real safetensors file with 4*3 + 3 = 15 float32 parameters."""
    return save_safetensors(
        {"w": np.arange(12, dtype=np.float32).reshape(4, 3), "b": np.ones(3, dtype=np.float32)}
    )


@pytest.fixture
def hub():
    hub = LocalHub(page_size=1000, cdn_threshold_bytes=1024)
    hub.tokens = {TOKEN}
    hub.add_model(
        BASE,
        files={"config.json": json.dumps(CONFIG), "model.safetensors": tiny_safetensors()},
        tags=("transformers", "roberta"),
        downloads=1000,
        aliases=("roberta-base",),
        library_name="transformers",
    )
    for index, (org, downloads) in enumerate([("alice", 30), ("bob", 10), ("alice", 20)]):
        hub.add_model(
            f"{org}/roberta-ft-{index}",
            files={
                "config.json": json.dumps(CONFIG),
                "model.safetensors": b"\0" * 2048,
                "README.md": b"# card",
            },
            tags=finetune_tags(),
            downloads=downloads,
            likes=index,
            pipeline_tag="text-classification",
            library_name="transformers",
            card_data={"license": "mit", "base_model": BASE},
            parameters=124_000_000,
        )
    hub.add_model(
        "carol/bert-ft", files={"config.json": b"{}"}, tags=finetune_tags("google-bert/bert-base-uncased")
    )
    hub.add_model("dave/gated-ft", files={"config.json": b"{}"}, tags=finetune_tags(), gated="manual")
    hub.add_model("erin/private-ft", files={"config.json": b"{}"}, tags=finetune_tags(), private=True)
    with hub:
        yield hub


@pytest.fixture
def api(hub):
    return HfApi(endpoint=hub.url)


@pytest.fixture
def raw(hub):
    """A plain HTTP client on the hub, for what huggingface_hub hides (status codes, headers, bodies)."""
    with httpx2.Client(base_url=hub.url) as client:
        yield client


# -- list_models ---------------------------------------------------------------------------------------


def test_list_models_filters_on_base_model_tag_and_sorts_by_downloads(api):
    models = list(api.list_models(filter=f"base_model:finetune:{BASE}", sort="downloads"))

    assert [m.id for m in models] == [*ROBERTA_FINETUNES, "dave/gated-ft"]
    assert [m.downloads for m in models] == [30, 20, 10, 0]
    assert models[0].sha is None and models[0].siblings is None  # not in the default fields


def test_list_models_search_author_and_several_filters(api):
    assert [m.id for m in api.list_models(search="ROBERTA-FT")] == ROBERTA_FINETUNES
    by_likes = api.list_models(author="alice", sort="likes")
    assert [m.id for m in by_likes] == ["alice/roberta-ft-2", "alice/roberta-ft-0"]
    both = api.list_models(filter=["text-classification", f"base_model:{BASE}"])
    assert sorted(m.id for m in both) == ROBERTA_FINETUNES


def test_list_models_expand_fields_are_parsed_into_model_info(api, hub):
    expand = ["sha", "siblings", "safetensors", "gated", "cardData", "config"]
    models = {m.id: m for m in api.list_models(filter=f"base_model:{BASE}", expand=expand)}

    model = models["alice/roberta-ft-0"]
    assert model.sha == api.model_info("alice/roberta-ft-0").sha
    assert [s.rfilename for s in model.siblings] == ["README.md", "config.json", "model.safetensors"]
    assert model.safetensors.total == 124_000_000
    assert model.gated is False and models["dave/gated-ft"].gated == "manual"
    assert model.card_data.license == "mit"
    assert model.config == {"architectures": ["RobertaForSequenceClassification"], "model_type": "roberta"}
    assert model.downloads is None  # expand answers only what was asked
    assert hub.requests[0].params["expand"] == expand  # sent as repeated parameters


def test_list_models_full_and_config_add_their_fields(api):
    (model,) = [m for m in api.list_models(full=True, fetch_config=True, cardData=True) if m.id == BASE]

    assert model.sha and model.last_modified
    assert [s.rfilename for s in model.siblings] == ["config.json", "model.safetensors"]
    assert "hidden_size" not in model.config and model.config["model_type"] == "roberta"


def test_pagination_returns_every_model_exactly_once(hub, api):
    hub.page_size = 3
    for index in range(10):
        hub.add_model(f"page/m{index:02d}", files={"a.txt": b"a"}, tags=("paged",))

    ids = [m.id for m in api.list_models(filter="paged", expand=["sha"])]

    assert ids == [f"page/m{index:02d}" for index in range(10)]
    pages = [r for r in hub.requests if r.path == "/api/models"]
    assert len(pages) == 4 and all(r.params["filter"] == ["paged"] for r in pages)


def test_limit_caps_the_page_and_the_client_stops(hub, api):
    assert len(list(api.list_models(limit=2))) == 2
    assert [r.params.get("limit") for r in hub.requests] == [["2"]]


def test_listing_5000_models_is_fast_and_complete():
    hub = LocalHub(page_size=1000)
    for index in range(5000):
        hub.add_model(f"org{index % 50}/model-{index}", tags=finetune_tags(), downloads=index % 7)
    with hub:
        started = time.perf_counter()
        models = list(HfApi(endpoint=hub.url).list_models(filter=f"base_model:{BASE}", sort="downloads"))
        elapsed_s = time.perf_counter() - started

    ids = [m.id for m in models]
    assert len(ids) == 5000 and set(ids) == {f"org{i % 50}/model-{i}" for i in range(5000)}
    assert [m.downloads for m in models] == sorted((m.downloads for m in models), reverse=True)
    assert elapsed_s < 3.0


# -- model_info, revisions, aliases -------------------------------------------------------------------


def test_model_info_at_main_and_at_an_older_sha(hub, api):
    old_sha = api.model_info("alice/roberta-ft-0").sha
    new_sha = hub.add_model("alice/roberta-ft-0", files={"config.json": b"{}"}, downloads=99)

    latest, old = api.model_info("alice/roberta-ft-0"), api.model_info("alice/roberta-ft-0", revision=old_sha)

    assert latest.sha == new_sha != old_sha and old.sha == old_sha
    assert [s.rfilename for s in latest.siblings] == ["config.json"]
    assert [s.rfilename for s in old.siblings] == ["README.md", "config.json", "model.safetensors"]
    assert latest.last_modified > old.last_modified and latest.downloads == 99
    assert latest.card_data.license == "mit"  # card data carries over when not given


def test_model_info_expand_answers_only_the_named_properties(api):
    info = api.model_info("alice/roberta-ft-0", expand=["downloads", "baseModels"])

    assert (info.id, info.downloads, info.sha, info.siblings) == ("alice/roberta-ft-0", 30, None, None)
    assert info.base_models == {"relation": "finetune", "models": [{"id": BASE}]}
    with pytest.raises(BadRequestError):  # like the Hub: baseModels is for repo info only
        list(api.list_models(expand=["baseModels"]))


def test_explicit_dates_and_blobs_metadata(hub, api):
    moment = datetime(2023, 5, 1, 12, 30, tzinfo=UTC)
    hub.add_model("dated/model", files={"model.safetensors": tiny_safetensors()}, last_modified=moment)

    info = api.model_info("dated/model", files_metadata=True)

    assert info.last_modified == moment and info.created_at == moment
    (sibling,) = info.siblings
    assert sibling.size == len(tiny_safetensors()) and sibling.lfs.size == sibling.size
    # parameters not given: counted from the safetensors header
    assert info.safetensors.total == 15 and info.safetensors.parameters == {"F32": 15}


def test_update_metadata_keeps_the_sha(hub, api):
    sha = api.model_info("bob/roberta-ft-1").sha
    hub.update_metadata("bob/roberta-ft-1", downloads=500, tags=("retagged",))

    info = api.model_info("bob/roberta-ft-1")
    assert (info.sha, info.downloads, info.tags) == (sha, 500, ["retagged"])
    assert [m.id for m in api.list_models(filter="retagged")] == ["bob/roberta-ft-1"]
    assert "bob/roberta-ft-1" not in {m.id for m in api.list_models(filter=f"base_model:{BASE}")}


def test_invalid_additions_are_refused_without_side_effects(hub, api):
    sha = api.model_info("bob/roberta-ft-1").sha

    with pytest.raises(ValueError, match="gated"):
        hub.add_model("bob/roberta-ft-1", gated="yes")
    with pytest.raises(ValueError, match="alias"):
        hub.add_model("roberta-base")
    with pytest.raises(ValueError, match="taken"):
        hub.add_model("new/model", aliases=("bob/roberta-ft-1",))
    with pytest.raises(ValueError, match="invalid repo id"):
        hub.add_model("a/b/c")

    assert api.model_info("bob/roberta-ft-1").sha == sha
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("new/model")


def test_legacy_alias_resolves_to_the_canonical_repo(hub, api):
    info = api.model_info("roberta-base")
    path = hf_hub_download("roberta-base", "config.json", endpoint=hub.url)

    assert info.id == BASE and info.author == "FacebookAI"
    assert json.loads(Path(path).read_text()) == CONFIG
    assert hub.model_requests() == {BASE: 3}  # info, then HEAD and GET of the file


def test_branch_names_with_a_slash(hub, api):
    sha = api.model_info("bob/roberta-ft-1").sha
    hub.create_branch("bob/roberta-ft-1", "refs/pr/1")
    hub.add_model("bob/roberta-ft-1", files={"config.json": b"{}"})

    assert api.model_info("bob/roberta-ft-1", revision="refs/pr/1").sha == sha
    path = hf_hub_download("bob/roberta-ft-1", "README.md", revision="refs/pr/1", endpoint=hub.url)
    assert Path(path).read_bytes() == b"# card"


# -- typed errors and access --------------------------------------------------------------------------


def test_typed_errors(hub, api):
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("nobody/nothing")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(BASE, revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(BASE, "config.json", revision="f" * 40, endpoint=hub.url)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(BASE, "missing.bin", endpoint=hub.url)
    with pytest.raises(GatedRepoError):
        hf_hub_download("dave/gated-ft", "config.json", endpoint=hub.url)
    allowed = hf_hub_download("dave/gated-ft", "config.json", endpoint=hub.url, token=TOKEN)
    assert Path(allowed).read_bytes() == b"{}"
    assert api.model_info("dave/gated-ft").gated == "manual"  # metadata of gated repos stays public


def test_disabled_repo_files_raise_disabled_error(hub):
    hub.update_metadata("carol/bert-ft", disabled=True)
    # hf_hub_download turns HTTP errors of its HEAD call into "not in the local cache", with the cause chained
    with pytest.raises(LocalEntryNotFoundError) as raised:
        hf_hub_download("carol/bert-ft", "config.json", endpoint=hub.url)
    assert isinstance(raised.value.__cause__, DisabledRepoError)


def test_private_repos_need_a_valid_token(hub, api):
    def listed(token: str | None) -> set[str]:
        return {m.id for m in api.list_models(filter=f"base_model:{BASE}", token=token)}

    assert "erin/private-ft" not in listed(None) and "erin/private-ft" not in listed("hf_wrong")
    assert "erin/private-ft" in listed(TOKEN)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("erin/private-ft")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("erin/private-ft", "config.json", endpoint=hub.url)
    assert api.model_info("erin/private-ft", token=TOKEN).id == "erin/private-ft"


# -- files ---------------------------------------------------------------------------------------------


def test_hf_hub_download_returns_exact_bytes_directly_and_through_the_cdn(hub):
    large = bytes(range(256)) * 40  # 10 KiB, over the 1 KiB CDN threshold
    hub.add_model("files/model", files={"small.json": b'{"a": 1}', "large.json": large})

    assert Path(hf_hub_download("files/model", "small.json", endpoint=hub.url)).read_bytes() == b'{"a": 1}'
    assert Path(hf_hub_download("files/model", "large.json", endpoint=hub.url)).read_bytes() == large
    statuses = [(r.method, r.path.split("/")[1], r.status) for r in hub.requests]
    assert ("HEAD", "files", 302) in statuses and ("GET", "blobs", 200) in statuses


def test_resolve_headers_and_ranges(hub, raw):
    sha = hub.add_model("files/ranged", files={"model.safetensors": b"0123456789", "notes.txt": b"hello"})
    url = "/files/ranged/resolve/main"

    head = raw.head(f"{url}/model.safetensors")
    partial = raw.get(f"{url}/model.safetensors", headers={"Range": "bytes=2-5"})
    tail = raw.get(f"{url}/notes.txt", headers={"Range": "bytes=3-"})

    assert head.headers["X-Repo-Commit"] == sha and head.headers["Content-Length"] == "10"
    assert head.headers["ETag"] == f'"{hashlib.sha256(b"0123456789").hexdigest()}"'
    assert head.headers["Accept-Ranges"] == "bytes"
    assert (partial.status_code, partial.content) == (206, b"2345")
    assert partial.headers["Content-Range"] == "bytes 2-5/10"
    assert (tail.status_code, tail.content) == (206, b"lo")
    assert raw.get(f"{url}/notes.txt", headers={"Range": "bytes=50-"}).status_code == 416


def test_snapshot_download_at_a_sha_gets_every_file(hub, tmp_path):
    files = {"config.json": b"{}", "model.safetensors": b"w" * 4096, "sub/dir/tokenizer.json": b"[]"}
    sha = hub.add_model("snap/model", files=files)
    hub.add_model("snap/model", files={"other.txt": b"later"})

    local = Path(snapshot_download("snap/model", revision=sha, endpoint=hub.url, local_dir=tmp_path / "snap"))

    got = {p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()}
    assert {name: data for name, data in got.items() if not name.startswith(".cache")} == files


def test_add_files_from_dir_and_tree_listing(hub, api, tmp_path):
    (tmp_path / "model" / "onnx").mkdir(parents=True)
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "model" / "onnx" / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "model" / ".git").mkdir()
    (tmp_path / "model" / ".git" / "HEAD").write_text("ref")
    hub.add_files_from_dir("dir/model", tmp_path / "model", tags=("from-dir",))
    hub.page_size = 1  # the tree is paginated too

    top = list(api.list_repo_tree("dir/model"))
    everything = list(api.list_repo_tree("dir/model", recursive=True, expand=True))
    inside = list(api.list_repo_tree("dir/model", path_in_repo="onnx"))

    assert [(type(e).__name__, e.path) for e in top] == [("RepoFile", "config.json"), ("RepoFolder", "onnx")]
    assert [e.path for e in everything] == ["config.json", "onnx", "onnx/model.onnx"]
    assert everything[2].lfs.sha256 and everything[2].last_commit.oid == api.model_info("dir/model").sha
    assert [e.path for e in inside] == ["onnx/model.onnx"]


def test_get_safetensors_metadata_reads_the_header_with_ranges(hub, api):
    large = save_safetensors({"emb": np.zeros((64, 16), dtype=np.float32)})  # over the CDN threshold
    hub.add_model("st/small", files={"model.safetensors": tiny_safetensors()})
    hub.add_model("st/large", files={"model.safetensors": large})

    small_meta = api.get_safetensors_metadata("st/small")
    large_meta = api.get_safetensors_metadata("st/large")

    assert small_meta.parameter_count == {"F32": 15}
    assert large_meta.parameter_count == {"F32": 1024}
    assert any(r.path.startswith("/blobs/") and r.status == 206 for r in hub.requests)


def test_datasets(hub, tmp_path):
    files = {"data/train.parquet": b"PAR1", "README.md": b"# ds"}
    sha = hub.add_dataset("org/tiny-suite", files=files, tags=("x",))
    api = HfApi(endpoint=hub.url)

    assert [d.id for d in api.list_datasets(filter="x")] == ["org/tiny-suite"]
    assert api.dataset_info("org/tiny-suite").sha == sha
    assert api.dataset_info("org/tiny-suite", revision=sha).siblings[1].rfilename == "data/train.parquet"
    path = hf_hub_download("org/tiny-suite", "data/train.parquet", repo_type="dataset", endpoint=hub.url)
    assert Path(path).read_bytes() == b"PAR1"
    local = snapshot_download(
        "org/tiny-suite", repo_type="dataset", endpoint=hub.url, local_dir=tmp_path / "d"
    )
    assert (Path(local) / "README.md").read_bytes() == b"# ds"
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/tiny-suite")  # a dataset is not a model
    # dataset requests are not model requests; the failed model lookup is one
    assert hub.model_requests() == {"org/tiny-suite": 1}


# -- request log and faults ---------------------------------------------------------------------------


def test_model_requests_counts_per_repo_but_not_lists(hub, api):
    api.model_info("bob/roberta-ft-1")
    hf_hub_download("bob/roberta-ft-1", "README.md", endpoint=hub.url)
    list(api.list_models())
    api.file_exists("roberta-base", "config.json")

    assert hub.model_requests() == {"bob/roberta-ft-1": 3, BASE: 1}  # info + HEAD + GET; one HEAD
    hub.reset_requests()
    assert hub.requests == [] and not hub.model_requests()


def test_fault_429_carries_retry_after_and_rate_limit_headers(hub, raw):
    hub.set_faults(FaultPlan(rate=1.0, kinds=("429",), retry_after_s=7))

    response = raw.get(f"/api/models/{BASE}")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7" and response.headers["RateLimit"] == '"api";r=0;t=7'
    assert "q=" in response.headers["RateLimit-Policy"]
    assert hub.model_requests() == {BASE: 1} and hub.requests[0].fault == "429"


def test_fault_error_statuses_and_slow_answers(hub, raw):
    hub.set_faults(FaultPlan(rate=1.0, kinds=("503",)))
    assert raw.get("/api/models").status_code == 503
    hub.set_faults(FaultPlan(rate=1.0, kinds=("slow",), slow_s=0.3))
    started = time.perf_counter()
    assert raw.get("/api/models").status_code == 200
    assert time.perf_counter() - started >= 0.3
    hub.set_faults(None)
    assert raw.get("/api/models").status_code == 200
    assert [r.fault for r in hub.requests] == ["503", "slow", None]


def test_fault_truncated_json_is_invalid_and_truncated_files_break_the_stream(hub, api, raw):
    hub.set_faults(FaultPlan(rate=1.0, kinds=("truncated",)))

    response = raw.get(f"/api/models/{BASE}")
    assert response.status_code == 200 and int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        response.json()
    with pytest.raises(json.JSONDecodeError):
        api.model_info(BASE)
    with pytest.raises(httpx2.RemoteProtocolError):
        raw.get(f"/{BASE}/resolve/main/config.json")
    assert [r.fault for r in hub.requests] == ["truncated"] * 3


def test_faults_are_reproducible_and_can_be_limited_to_paths(hub, raw):
    def fault_sequence(plan: FaultPlan) -> list[str | None]:
        hub.reset_requests()
        hub.set_faults(plan)
        for _ in range(20):
            raw.get(f"/api/models/{BASE}")
            raw.head(f"/{BASE}/resolve/main/config.json")
        return [r.fault for r in hub.requests]

    plan = FaultPlan(rate=0.5, kinds=("500", "503"), seed=3)
    first, second = fault_sequence(plan), fault_sequence(plan)
    only_api = fault_sequence(FaultPlan(rate=1.0, kinds=("500",), only_paths=("/api/",)))

    assert first == second and 5 < sum(f is not None for f in first) < 35
    assert only_api == ["500", None] * 20


def test_unknown_route_is_a_plain_404(hub, raw):
    response = raw.get("/api/spaces")
    assert response.status_code == 404 and "X-Error-Code" not in response.headers
