"""Runtime settings: the only module that reads os.environ.

Entry points call ``Settings.from_env()`` once and pass the object down. Flags given on a command line
override the environment through ``dataclasses.replace``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_HUB_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    db_path: Path = Path("leaderboard.db")
    hub_endpoint: str = DEFAULT_HUB_ENDPOINT
    hub_token: str | None = None
    cache_dir: Path = Path("cache")
    log_level: str = "INFO"
    # crawler
    crawl_concurrency: int = 8
    crawl_max_retries: int = 6
    crawl_backoff_base_s: float = 1.0
    crawl_backoff_max_s: float = 60.0
    crawl_page_size: int = 1000
    max_params: int = 2_000_000_000
    crawl_scorers: tuple[str, ...] = field(default=("linear_probe", "free_energy"))
    # scoring: the free energy's reference corpus: "local" (text of ../shared/datasets) or a UTF-8 text file
    reference_corpus: str = "local"
    # app
    host: str = "127.0.0.1"
    port: int = 7860

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Build settings from ``MRL_*`` variables plus the standard ``HF_ENDPOINT`` and ``HF_TOKEN``."""
        env = os.environ if environ is None else environ
        values: dict = {}
        if "MRL_DB" in env:
            values["db_path"] = Path(env["MRL_DB"])
        if env.get("HF_ENDPOINT"):
            values["hub_endpoint"] = env["HF_ENDPOINT"].rstrip("/")
        if env.get("HF_TOKEN"):
            values["hub_token"] = env["HF_TOKEN"]
        if "MRL_CACHE_DIR" in env:
            values["cache_dir"] = Path(env["MRL_CACHE_DIR"])
        if "MRL_LOG_LEVEL" in env:
            values["log_level"] = env["MRL_LOG_LEVEL"].upper()
        if "MRL_CRAWL_CONCURRENCY" in env:
            values["crawl_concurrency"] = _positive_int(env, "MRL_CRAWL_CONCURRENCY")
        if "MRL_MAX_PARAMS" in env:
            values["max_params"] = _positive_int(env, "MRL_MAX_PARAMS")
        if env.get("MRL_REFERENCE_CORPUS"):
            values["reference_corpus"] = env["MRL_REFERENCE_CORPUS"]
        if "MRL_CRAWL_BACKOFF_BASE_S" in env:
            values["crawl_backoff_base_s"] = float(env["MRL_CRAWL_BACKOFF_BASE_S"])
        return replace(cls(**values), **overrides)

    def with_overrides(self, **overrides) -> Settings:
        """A copy with the given fields replaced; ``None`` values are ignored (unset CLI flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _positive_int(env: Mapping[str, str], name: str) -> int:
    try:
        value = int(env[name])
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {env[name]!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value
