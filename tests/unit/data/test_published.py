"""Importing IBM's published model-recycling results: known answers from the copy bundled in data/published_2023."""

from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import json
import threading
from collections import Counter, defaultdict
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from data.__main__ import main
from data.metrics import PUBLISHED_SOURCE
from data.published import (
    BASELINE_REVISION,
    BUNDLED_DIR,
    DATASET_COLUMNS,
    MODELS_TESTED_PATH,
    PUBLISHED_BASES,
    PUBLISHED_CONFIG_HASH,
    PUBLISHED_CONFIG_JSON,
    PUBLISHED_PROTOCOL,
    PublishedDataError,
    PublishedSourceError,
    import_published,
    read_published,
)
from data.selection import aliases_of, canonical_id
from data.store import SCORE_FRAME_COLUMNS, Store

RESULTS_DIR = BUNDLED_DIR / "results"  # IBM's results/ files, gzipped
TABLES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "model_recycling"  # IBM's <arch>_table.csv, gzipped

# README "rows in models_tested" and "fully tested (36 datasets)" columns.
README_MODELS = {
    "FacebookAI/roberta-base": 1278, "google-bert/bert-base-uncased": 573, "google-bert/bert-base-cased": 329,
    "google-t5/t5-base": 285, "google/t5-v1_1-base": 145, "microsoft/deberta-v3-base": 93,
}
README_FULLY_TESTED = {
    "FacebookAI/roberta-base": 386, "google-bert/bert-base-uncased": 439, "google-bert/bert-base-cased": 241,
    "google-t5/t5-base": 84, "google/t5-v1_1-base": 45, "microsoft/deberta-v3-base": 78,
}
# README "column-shifted rows (suspect cells)" per board (data/quality.py's rule)
README_SUSPECT = {
    "FacebookAI/roberta-base": (53, 681), "google-bert/bert-base-uncased": (63, 729),
    "google-bert/bert-base-cased": (56, 673), "google-t5/t5-base": (40, 453), "google/t5-v1_1-base": (13, 156),
    "microsoft/deberta-v3-base": (5, 47),
}
EMPTY_BASELINE_RUNS = {"t5-base": {3, 7, 14, 17}, "google/t5-v1_1-base": {12, 17}}  # STS-B stages with no spearmanr
ROBERTA_BASELINE = "results/models_results_roberta_base_pretrain.csv"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """One import from the bundled directory, shared by the read-only tests of this module."""
    store = Store(tmp_path_factory.mktemp("published") / "lb.db")
    report = import_published(store, BUNDLED_DIR)
    return store, report


@pytest.fixture(scope="module")
def csv_rows() -> list[dict[str, str]]:
    with gzip.open(RESULTS_DIR / "models_tested.csv.gz", "rt", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _unpack(target: Path) -> Path:
    """The bundled results/ uncompressed under ``target``, laid out as in IBM's repository."""
    (target / "results").mkdir(parents=True)
    for packed in RESULTS_DIR.glob("*.csv.gz"):
        (target / "results" / packed.stem).write_bytes(gzip.decompress(packed.read_bytes()))
    return target


def _rows(store: Store, base_id: str) -> list[dict]:
    return [dict(zip(SCORE_FRAME_COLUMNS, row, strict=True))
            for row in store.score_rows(base_id=base_id, source=PUBLISHED_SOURCE)]


def _count(store: Store) -> int:
    return sum(len(store.score_rows(base_id=base_id, source=PUBLISHED_SOURCE)) for base_id in README_MODELS)


# ------------------------------------------------------------------------------------------ constants
def test_bases_are_canonical_hub_ids_that_agree_with_the_alias_table():
    assert len(PUBLISHED_BASES) == 6
    for csv_base, (base_id, arch) in PUBLISHED_BASES.items():
        assert base_id in aliases_of(csv_base) and csv_base in aliases_of(base_id)
        assert canonical_id(csv_base) == base_id
        assert (RESULTS_DIR / f"models_results_{arch}_pretrain.csv.gz").is_file()


def test_config_hash_is_the_sha256_of_the_canonical_protocol_json():
    canonical = json.dumps(dict(PUBLISHED_PROTOCOL), sort_keys=True, separators=(",", ":"))
    assert PUBLISHED_CONFIG_JSON == canonical
    assert PUBLISHED_CONFIG_HASH == hashlib.sha256(canonical.encode()).hexdigest()
    assert PUBLISHED_PROTOCOL["source_commit"] == "1c1d4228810ef0506de1a85144a3744b274c8bbc"
    assert len(DATASET_COLUMNS) == len(set(DATASET_COLUMNS)) == 36


# ------------------------------------------------------------------------------------- known answers
def test_models_per_base_match_the_readme(imported):
    store, report = imported
    for base_id, expected in README_MODELS.items():
        revisions = {r["revision"] for r in _rows(store, base_id)} - {BASELINE_REVISION}
        assert len(revisions) == expected, base_id
        assert all(rev.startswith("published-row-") for rev in revisions)
    assert {c.base_id: c.models for c in report.per_base} == README_MODELS
    assert {c.base_id: c.fully_tested for c in report.per_base} == README_FULLY_TESTED
    assert {c.base_id: c.baseline_missing for c in report.per_base if c.baseline_missing} == {
        "google-t5/t5-base": 4, "google/t5-v1_1-base": 2}
    assert report.models == 2703 and report.scores == _count(store)


@pytest.mark.parametrize("csv_base", list(PUBLISHED_BASES))
def test_baseline_mean_reproduces_the_tables_pretrained_avg(imported, csv_base):
    store, _ = imported
    base_id = PUBLISHED_BASES[csv_base][0]
    baseline = [r for r in _rows(store, base_id) if r["revision"] == BASELINE_REVISION]
    assert {r["repo_id"] for r in baseline} == {base_id}
    assert {(r["scorer"], r["metric"], r["config_hash"]) for r in baseline} == {
        ("intertraining", "target_score", PUBLISHED_CONFIG_HASH)}
    per_target = defaultdict(list)
    for r in baseline:
        per_target[r["target"]].append(r)
    assert set(per_target) == set(DATASET_COLUMNS)
    for target, runs in per_target.items():  # 20 seeds, minus the empty (failed) STS-B runs of the T5 bases
        missing = EMPTY_BASELINE_RUNS.get(csv_base, set()) if target == "stsb" else set()
        assert sorted(r["seed"] for r in runs) == sorted(set(range(20)) - missing)
    avg = 100 * sum(sum(r["value"] for r in runs) / len(runs) for runs in per_target.values()) / 36
    with gzip.open(TABLES_DIR / f"{csv_base.replace('/', '_')}_table.csv.gz", "rt", newline="", encoding="utf-8") as f:
        row0 = next(csv.DictReader(f))
    assert row0["model_name"] == csv_base
    assert avg == pytest.approx(float(row0["avg"]), abs=1e-6)


@pytest.mark.parametrize("name", [
    "deepset/roberta-base-squad2-covid",  # row 0, fully tested
    "Makabaka/roberta-base-EnglishLawAI_roberta_base_version4",  # probe only
    "nbtpj/biobert-for-collection-rank-enhance-mas",  # negative STS-B Spearman
    "shaiman12/flan-t5-base-samsum",  # on two rows, one with mnli_lp = 0
    "sileod/deberta-v3-base-tasksource-nli",
])
def test_stored_values_equal_the_csv(imported, csv_rows, name):
    store, _ = imported
    rows = [(i, row) for i, row in enumerate(csv_rows) if row["model_name"] == name]
    assert rows
    stored = store.scores(repo_id=name, source=PUBLISHED_SOURCE)
    assert {s.revision for s in stored} == {f"published-row-{i}" for i, _ in rows}
    for i, row in rows:
        base_id = PUBLISHED_BASES[row["base_model"]][0]
        mine = [s for s in stored if s.revision == f"published-row-{i}"]
        assert {s.base_id for s in mine} == {base_id}
        assert {(s.seed, s.config_hash, s.config_json) for s in mine} == {
            (0, PUBLISHED_CONFIG_HASH, PUBLISHED_CONFIG_JSON)}
        targets = {s.target: s.value for s in mine if s.scorer == "intertraining"}
        assert targets == {t: float(row[t]) for t in DATASET_COLUMNS if row[t]}
        assert all(s.metric == "target_score" for s in mine if s.scorer == "intertraining")
        (probe,) = [s for s in mine if s.scorer == "linear_probe"]
        assert (probe.metric, probe.target, probe.value) == ("probe_accuracy", "mnli", float(row["mnli_lp"]))
        assert probe.extra == {"num_params": int(float(row["size"])), "last_modified": row["last_modified"],
                               "model_type": row["model_type"]}


@pytest.mark.parametrize(("row", "csv_base"), [(999, "roberta-base"), (2082, "google/t5-v1_1-base"),
                                              (2409, "microsoft/deberta-v3-base")])
def test_a_bases_own_row_is_a_candidate_apart_from_the_baseline(imported, csv_rows, row, csv_base):
    """models_tested.csv lists some bases as candidates of themselves (one run each); the site ranks them so."""
    store, _ = imported
    base_id = PUBLISHED_BASES[csv_base][0]
    assert csv_rows[row]["model_name"] == csv_rows[row]["base_model"] == csv_base
    own = [s for s in store.scores(repo_id=csv_base, source=PUBLISHED_SOURCE) if s.base_id == base_id]
    assert {s.revision for s in own} - {BASELINE_REVISION} == {f"published-row-{row}"}
    assert {s.seed for s in own if s.revision == f"published-row-{row}"} == {0}


def test_zero_probe_rows_are_kept_and_duplicates_reported(imported):
    store, report = imported
    probes = store.scores(source=PUBLISHED_SOURCE, scorer="linear_probe")
    assert len(probes) == 2703
    assert report.probe_zero == sum(p.value == 0.0 for p in probes) == 242
    assert len(report.duplicate_models) == 7 and "shaiman12/flan-t5-base-samsum" in report.duplicate_models


def test_reimport_replaces_instead_of_adding(imported):
    store, report = imported
    again = import_published(store, BUNDLED_DIR)
    scores = store.scores(source=PUBLISHED_SOURCE)
    keys = Counter((s.repo_id, s.revision, s.scorer, s.metric, s.target, s.seed) for s in scores)
    assert len(scores) == again.scores == report.scores
    assert max(keys.values()) == 1


# ---------------------------------------------------------------------------------------------- URLs
class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


@pytest.fixture
def serve():
    """Serve a directory over HTTP on 127.0.0.1; yields a function dir -> URL."""
    servers = []

    def start(directory: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_import_from_a_url(tmp_path, imported, serve):
    url = serve(_unpack(tmp_path / "site"))  # a URL serves IBM's uncompressed files
    store = Store(tmp_path / "lb.db")
    report = import_published(store, url + "/", timeout_s=10)
    assert report.source == url + "/"
    assert report.per_base == imported[1].per_base
    assert _count(store) == imported[1].scores


def test_missing_file_at_a_url_names_it(tmp_path, serve):
    url = serve(tmp_path)
    with pytest.raises(PublishedSourceError, match=rf"{url}/{MODELS_TESTED_PATH}: HTTP 404"):
        import_published(Store(tmp_path / "lb.db"), url, timeout_s=10)


def test_unreachable_url_is_a_clear_error(tmp_path):
    store = Store(tmp_path / "lb.db")
    with pytest.raises(PublishedSourceError, match=r"cannot reach http://127\.0\.0\.1:9/results/models_tested"):
        import_published(store, "http://127.0.0.1:9", timeout_s=5)
    assert _count(store) == 0


# ------------------------------------------------------------------------------------------ bad input
def _broken_copy(tmp_path: Path, edit_models=None, edit_baseline=None) -> Path:
    """An uncompressed copy of the bundled results/ in tmp, with models_tested.csv or the roberta baseline edited."""
    root = _unpack(tmp_path / "copy")
    if edit_models:
        path = root / MODELS_TESTED_PATH
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        edit_models(rows)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        path.write_text(buffer.getvalue(), encoding="utf-8")
    if edit_baseline:
        path = root / ROBERTA_BASELINE
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(edit_baseline(lines)), encoding="utf-8")
    return root


def _set(row: int, column: str, value: str):
    def edit(rows):
        rows[row + 1][rows[0].index(column)] = value
    return edit


def _drop_column(column: str):
    def edit(rows):
        at = rows[0].index(column)
        for row in rows:
            del row[at]
    return edit


def _rename_baseline_dataset(lines):
    return [line.replace("\ttweet_ev_emoji\t", "\ttweet_eval_emoji\t") for line in lines]


@pytest.mark.parametrize(("edit_models", "edit_baseline", "error", "message"), [
    (_set(0, "cola", "n/a"), None, PublishedDataError, r"row 0 \(deepset/.*cola score 'n/a' is not a number"),
    (_drop_column("anli"), None, PublishedDataError, r"models_tested\.csv: missing column\(s\) anli"),
    (_set(5, "base_model", "gpt2"), None, PublishedDataError, r"row 5 .*unknown base_model 'gpt2'"),
    (_set(0, "mrpc", "86.8"), None, PublishedDataError, r"mrpc score 86\.8 is outside \[0, 1\]"),
    (_set(0, "stsb", "-1.5"), None, PublishedDataError, r"stsb score -1\.5 is outside \[-1, 1\]"),
    (_set(1, "mnli_lp", "nan"), None, PublishedDataError, r"row 1 .*mnli_lp score nan is outside"),
    (None, lambda lines: lines[:-1], PublishedDataError, r"roberta_base_pretrain\.csv: wrong baseline shape"),
    (None, lambda lines: lines + lines[-1:], PublishedDataError, r"wrong baseline shape.*repeated 1"),
    (None, _rename_baseline_dataset, PublishedDataError, r"'tweet_eval_emoji' matches no models_tested column"),
    (None, lambda lines: [line.replace("\tcola\t0.83", "\tcola\tabc") for line in lines], PublishedDataError,
     r"roberta_base_pretrain\.csv line 2: cola score 'abc\d+' is not a number"),
])
def test_bad_input_raises_and_writes_nothing(tmp_path, imported, edit_models, edit_baseline, error, message):
    store, _ = imported
    before = (_count(store), store.data_version())
    source = _broken_copy(tmp_path, edit_models, edit_baseline)
    with pytest.raises(error, match=message):
        import_published(store, source)
    assert (_count(store), store.data_version()) == before


def test_missing_file_raises_and_writes_nothing(tmp_path, imported):
    store, _ = imported
    before = _count(store)
    source = _broken_copy(tmp_path)
    (source / ROBERTA_BASELINE).unlink()
    with pytest.raises(PublishedSourceError, match=r"missing published file .*roberta_base_pretrain\.csv"):
        import_published(store, source)
    assert _count(store) == before


def test_a_negative_stsb_spearman_is_accepted(tmp_path):
    source = _broken_copy(tmp_path, _set(0, "stsb", "-0.25"))
    scores = read_published(source).scores
    (stsb,) = [s for s in scores if s.revision == "published-row-0" and s.target == "stsb"]
    assert stsb.value == -0.25


# ----------------------------------------------------------------------------------------------- CLI
def test_cli_imports_and_prints_one_line_per_base(tmp_path, capsys):
    db = tmp_path / "cli.db"
    assert main(["import-published", "--source", str(BUNDLED_DIR), "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    for base_id, models in README_MODELS.items():
        assert any(line.startswith(f"{base_id}: {models} models") for line in lines), base_id
    assert "2703 models" in lines[-1]
    assert _count(Store(db)) > 50_000


def test_cli_reports_an_unreachable_source_and_fails(tmp_path, capsys):
    code = main(["import-published", "--source", "http://127.0.0.1:9", "--db", str(tmp_path / "x.db"),
                 "--timeout-s", "5"])
    assert code == 1


def test_column_shifted_cells_are_stored_as_suspect_and_counted_per_board(imported):
    """The rule of data/quality.py on each base's own rows, in the file's column order: the import stores the
    flagged cells with status "suspect" (shown, out of the mean by default) and reports rows and cells per board,
    the figures README gives; the row issue 31 names is among them."""
    store, report = imported
    assert {c.base_id: (c.suspect_rows, c.suspect_cells) for c in report.per_base} == README_SUSPECT
    rows = [r for r in _rows(store, "FacebookAI/roberta-base") if r["status"] == "suspect"]
    assert len(rows) == 681 and {r["metric"] for r in rows} == {"target_score"}
    cold = {r["target"] for r in rows if r["repo_id"] == "ibm/ColD-Fusion-itr11-seed3"}
    assert {"sst_5bins", "sst2"} <= cold
