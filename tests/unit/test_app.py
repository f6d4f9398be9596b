import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from data.records import ArchSignature, BaseModel, SkipReason
from data.store import Store
from tests.helpers.store_procs import BASE_ID, make_candidate, sha_of

ROOT = Path(__file__).resolve().parents[2]


def test_import_app_does_not_import_torch():
    code = "import sys, app; assert 'torch' not in sys.modules, 'app imported torch'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr


def test_summary_counts_candidates_and_skip_reasons(tmp_path):
    import app

    store = Store(tmp_path / "lb.db")
    assert app.summarize(store) == []
    sig = ArchSignature(model_type="bert", hidden_size=32, num_hidden_layers=2, num_attention_heads=2, vocab_size=9)
    store.upsert_base(BaseModel(repo_id=BASE_ID, sha=sha_of("b"), aliases=(BASE_ID,), signature=sig))
    store.save_candidates([
        make_candidate("a/1"), make_candidate("a/2"),
        replace(make_candidate("a/3", skipped=True), skip_reason=SkipReason.GATED),
        replace(make_candidate("a/4", skipped=True), skip_reason=SkipReason.PICKLE_ONLY),
        replace(make_candidate("a/5", skipped=True), skip_reason=SkipReason.GATED),
    ])
    assert app.summarize(store) == [[BASE_ID, 2, "gated 2, pickle_only 1"]]
