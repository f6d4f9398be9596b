"""Test-wide isolation: a tmp HF cache, no telemetry, no network beyond 127.0.0.1 (pytest-socket)."""

from __future__ import annotations

import os

import pytest

# Set before huggingface_hub is first imported anywhere in the test session: nothing may default to the real Hub.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")  # a closed port: any stray default-endpoint call fails fast
os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
os.environ.pop("HF_TOKEN", None)
if os.environ.get("PYTEST_XDIST_WORKER"):  # one worker per core: each on one thread (and so the processes it starts),
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):  # or OpenMP's spinning threads of
        os.environ.setdefault(_var, "1")  # two workers oversubscribe the cores and a 15 s test takes 115 s


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    # huggingface_hub reads HF_HOME once, at import (during collection): point its cache at tmp too.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("MRL_DB", raising=False)


@pytest.fixture
def settings(tmp_path):
    from data.settings import Settings

    return Settings(
        db_path=tmp_path / "leaderboard.db",
        cache_dir=tmp_path / "cache",
        hub_endpoint="http://127.0.0.1:9",
        crawl_backoff_base_s=0.01,
        crawl_backoff_max_s=0.05,
    )


SPREAD_MODULES = {"tests.unit.scoring.test_llc_calibration"}  # long independent cases: spread over the workers


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``--dist loadgroup``), each test module runs on one worker, so its module-scoped fixtures
    (a live app, a tiny Hub, a trained world) are built once; the cases of SPREAD_MODULES go to either worker."""
    for item in items:
        module = getattr(item.module, "__name__", "")
        if module not in SPREAD_MODULES:
            item.add_marker(pytest.mark.xdist_group(module))
