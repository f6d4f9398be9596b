"""A job's public error (service/job_errors.py): one sentence, no traceback, server path, host name or pid."""

from __future__ import annotations

import socket
import traceback

from data.errors import HubError, ScoringError
from service.job_errors import MAX_CHARS, public_error, redact


def raised(error: Exception) -> Exception:
    try:
        raise error
    except Exception as e:  # noqa: BLE001
        return e


def test_an_unexpected_crash_shows_its_class_name_only():
    error = raised(ValueError("/root/secret/path.py line 3: x = 'hunter2'"))
    text = public_error(error)
    assert text == "The scoring worker failed unexpectedly (ValueError); it has been logged."


def test_the_project_s_own_error_keeps_its_sentence_without_paths():
    text = public_error(ScoringError("/root/.cache/hub/models--org--m/snapshots/abc has no safetensors weights"))
    assert text == "<path> has no safetensors weights"
    assert public_error(ScoringError("org/cand-0 at main: target sst2 failed at step 3")) == (
        "org/cand-0 at main: target sst2 failed at step 3")  # a repo id is not a path
    assert "https://huggingface.co/api/models" in public_error(HubError("https://huggingface.co/api/models is down"))
    for path in ("./out/x.pt", "../x.pt", "~/x.pt", "'/srv/data/rows.csv'"):
        assert "/" not in public_error(ScoringError(f"cannot read {path}")), path


def test_host_name_worker_name_traceback_and_extra_lines_are_dropped():
    host = socket.gethostname()
    worker = f"{host}:4242:a1b2c3"
    text = public_error(ScoringError(f"job 3 is not RUNNING for {worker} on {host}\nsecond line"), hide=(worker,))
    assert text == "job 3 is not RUNNING for <worker> on <worker>" and "4242" not in text
    with_traceback = ScoringError("".join(traceback.format_exception(raised(KeyError("k")))))
    assert public_error(with_traceback) == "The scoring worker failed unexpectedly (ScoringError); it has been logged."
    assert public_error(ScoringError("")).startswith("The scoring worker failed unexpectedly (ScoringError)")
    assert len(redact("x" * 1000)) == MAX_CHARS and redact("x" * 1000).endswith("…")
