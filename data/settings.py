"""Runtime settings: the only module that reads os.environ.

Entry points call ``Settings.from_env()`` once and pass the object down. Flags given on a command line
override the environment through ``dataclasses.replace``.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_HUB_ENDPOINT = "https://huggingface.co"
# the bundled results snapshot (committed; written by ``python -m scoring study``, read by data/snapshot.py)
DEFAULT_SNAPSHOT = Path(__file__).resolve().parent / "snapshot" / "study.json"
# IBM's published 2023 results, bundled (read by data/published.py): the app seeds a store with them once
DEFAULT_PUBLISHED = Path(__file__).resolve().parent / "published_2023"


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
    # scoring service: job leases, retries, the two-stage policy, submissions
    job_lease_s: float = 600.0  # a RUNNING job whose worker sent no heartbeat for this long goes back to PENDING
    job_max_attempts: int = 3  # then it is FAILED with its last error
    top_k: int = 10  # stage 2: intertraining for the K best candidates per base by probe accuracy
    suite: str = "quick"  # the intertraining suite workers use
    submit_limit_per_hour: int = 20  # accepted new models per submitter per hour
    submit_attempts_per_hour: int = 60  # submissions that reach the Hub (refused ones too) per submitter per hour
    submit_timeout_s: float = 10.0  # how long Submit waits for the Hub before telling the user to try again
    # personal rankings (a user's own rows): candidates, how long results stay at their URL, how long the rows stay
    personal_top_k: int = 10  # the base plus its top K of the general leaderboard
    personal_ttl_s: float = 7 * 86400.0
    personal_keep_rows_s: float = 0.0  # rows kept after the job ends (0: deleted when it ends)
    personal_rows_max_s: float = 86400.0  # the cap: a job that never ends loses its rows after this
    personal_purge_every_s: float = 60.0  # how often the app and an idle worker delete what is past its time
    personal_upload_keep_s: float = 3600.0  # an uploaded file never queued is deleted after this (a queued one at once)
    personal_max_rows: int = 20_000
    personal_max_bytes: int = 20 * 2**20
    personal_limit_per_hour: int = 10  # personal rankings queued per client address per hour (the app)
    models_dir: Path | None = Path("models")  # local checkpoints a web user may name (./NAME); None: Hub ids only
    study_dir: Path = Path("out/study")  # a study's --out: its candidates (study/...) are scored from its weights
    trusted_proxies: tuple[str, ...] = ()  # addresses whose X-Forwarded-For is believed (none: the peer address)
    # app
    host: str = "127.0.0.1"
    port: int = 7860
    header_timeout_s: float = 10.0  # a request's headers must arrive within this (ui/http_timeouts.py)
    body_timeout_s: float = 30.0  # then its body within this; else 408 and the connection is closed
    snapshot_path: Path | None = DEFAULT_SNAPSHOT  # seeds an app's store with what it lacks; None: don't seed
    published_path: Path | None = DEFAULT_PUBLISHED  # the same for IBM's published results; None: don't seed

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Build settings from ``MRL_*`` variables plus the standard ``HF_ENDPOINT`` and ``HF_TOKEN``."""
        env = os.environ if environ is None else environ
        values = {name: read(env, key) for key, name, read in _READERS if key in env}  # a present, checked value
        values |= {name: read(env, key) for key, name, read in _TEXTS if env.get(key)}  # a non-empty one
        return replace(cls(**values), **overrides)

    def with_overrides(self, **overrides) -> Settings:
        """A copy with the given fields replaced; ``None`` values are ignored (unset CLI flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def snapshot_path_of(text: str) -> Path | None:
    """A path setting that can be switched off (``MRL_SNAPSHOT``, ``MRL_PUBLISHED``, ``--snapshot``,
    ``--published``, ``MRL_MODELS_DIR``): a path, or ``none`` for none (seed nothing, take no local folders)."""
    return None if text.strip().lower() == "none" else Path(text)


def _positive_int(env: Mapping[str, str], name: str) -> int:
    try:
        value = int(env[name])
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {env[name]!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _positive_float(env: Mapping[str, str], name: str) -> float:
    return _finite_float(env, name, zero_ok=False)


def _non_negative_float(env: Mapping[str, str], name: str) -> float:
    return _finite_float(env, name, zero_ok=True)


def _finite_float(env: Mapping[str, str], name: str, *, zero_ok: bool) -> float:
    try:
        value = float(env[name])
    except ValueError:
        raise ValueError(f"{name} must be a number, got {env[name]!r}") from None
    if not ((value >= 0 if zero_ok else value > 0) and math.isfinite(value)):
        raise ValueError(f"{name} must be {'zero or more' if zero_ok else 'positive'} and finite, got {value}")
    return value


def _path(env: Mapping[str, str], name: str) -> Path:
    if not env[name].strip():
        raise ValueError(f"{name} must be a path, got {env[name]!r}")
    return Path(env[name])


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(env: Mapping[str, str], name: str) -> str:
    level = env[name].strip().upper()
    known = LOG_LEVELS  # the standard ones: not whatever levels imported packages registered (ray adds TRACE)
    if level not in known:
        raise ValueError(f"{name} must be one of {', '.join(known)}, got {env[name]!r}")
    return level


def _http_url(env: Mapping[str, str], name: str) -> str:
    url = env[name].strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest:
        raise ValueError(f"{name} must be an http:// or https:// URL, got {env[name]!r}")
    return url


def _proxies(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or networks (what uvicorn's forwarded_allow_ips matches), or ``*``."""
    proxies = tuple(p.strip() for p in env[name].split(",") if p.strip())
    for proxy in proxies:
        if proxy != "*":
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{name}: {proxy!r} is not an IP address or network (nor *)") from None
    return proxies


def _text(env: Mapping[str, str], name: str) -> str:
    return env[name]


def _path_or_none(env: Mapping[str, str], name: str) -> Path | None:
    return snapshot_path_of(env[name])


# (variable, Settings field, reader): a value set in the environment is checked by its reader (ValueError naming the
# variable); _TEXTS are taken only when not empty.
_READERS = (
    ("MRL_DB", "db_path", _path), ("MRL_STUDY_DIR", "study_dir", _path), ("MRL_CACHE_DIR", "cache_dir", _path),
    ("MRL_LOG_LEVEL", "log_level", _log_level),
    *((key, name, _positive_int) for key, name in (
        ("MRL_CRAWL_CONCURRENCY", "crawl_concurrency"), ("MRL_MAX_PARAMS", "max_params"),
        ("MRL_JOB_MAX_ATTEMPTS", "job_max_attempts"), ("MRL_TOP_K", "top_k"),
        ("MRL_SUBMIT_LIMIT_PER_HOUR", "submit_limit_per_hour"),
        ("MRL_SUBMIT_ATTEMPTS_PER_HOUR", "submit_attempts_per_hour"), ("MRL_PERSONAL_TOP_K", "personal_top_k"),
        ("MRL_PERSONAL_MAX_ROWS", "personal_max_rows"), ("MRL_PERSONAL_MAX_BYTES", "personal_max_bytes"),
        ("MRL_PERSONAL_LIMIT_PER_HOUR", "personal_limit_per_hour"))),
    *((key, name, _positive_float) for key, name in (
        ("MRL_JOB_LEASE_S", "job_lease_s"), ("MRL_PERSONAL_TTL_S", "personal_ttl_s"),
        ("MRL_PERSONAL_ROWS_MAX_S", "personal_rows_max_s"), ("MRL_PERSONAL_PURGE_EVERY_S", "personal_purge_every_s"),
        ("MRL_PERSONAL_UPLOAD_KEEP_S", "personal_upload_keep_s"), ("MRL_SUBMIT_TIMEOUT_S", "submit_timeout_s"),
        ("MRL_HEADER_TIMEOUT_S", "header_timeout_s"), ("MRL_BODY_TIMEOUT_S", "body_timeout_s"),
        ("MRL_CRAWL_BACKOFF_BASE_S", "crawl_backoff_base_s"))),
    ("MRL_PERSONAL_KEEP_ROWS_S", "personal_keep_rows_s", _non_negative_float),
)
_TEXTS = (
    ("HF_ENDPOINT", "hub_endpoint", _http_url), ("HF_TOKEN", "hub_token", _text),
    ("MRL_MODELS_DIR", "models_dir", _path_or_none), ("MRL_TRUSTED_PROXIES", "trusted_proxies", _proxies),
    ("MRL_SUITE", "suite", _text), ("MRL_REFERENCE_CORPUS", "reference_corpus", _text),
    ("MRL_SNAPSHOT", "snapshot_path", _path_or_none), ("MRL_PUBLISHED", "published_path", _path_or_none),
)
