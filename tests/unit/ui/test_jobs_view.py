"""The app's public job list (ui/handlers.py ``jobs``, ``job_counts``) never shows a personal ranking's job."""

from __future__ import annotations

from data.records import PERSONAL_JOB
from data.store import Store
from ui.handlers import AppHandlers


def test_the_jobs_view_and_its_counts_leave_personal_rankings_out(tmp_path, settings):
    store = Store(tmp_path / "lb.db")
    store.queue.enqueue("m/x", "c" * 40, ["linear_probe", "free_energy"], "b/base")
    request = store.requests.create_personal(base_id="b/base", data_hash="a" * 64, rows_json="{}",
                                             source="upload:x.csv", summary={}, top_k=2, ttl_s=3600.0,
                                             rows_max_s=3600.0)
    store.queue.claim_job("w1", [PERSONAL_JOB])
    handlers = AppHandlers(store, settings)
    jobs = handlers.jobs()
    assert list(jobs["scorer"]) == ["free_energy", "linear_probe"]  # newest first, no personal job
    assert request.job_id not in set(jobs["id"]) and handlers.job_counts() == "pending 2"
    assert AppHandlers(Store(tmp_path / "empty.db"), settings).job_counts() == "no jobs yet"
