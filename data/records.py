"""Frozen records shared by every package. Every arrow in the data flow carries one of these."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from data.personal_record import PersonalRanking

SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class Kind(StrEnum):
    """How a model descends from its base, from the Hub's model-tree tags (or a config match)."""

    FINETUNE = "finetune"
    ADAPTER = "adapter"
    QUANTIZED = "quantized"
    MERGE = "merge"


class Match(StrEnum):
    """Why the crawler considered a model: a base_model tag, or a config equal to the base's."""

    TAG = "tag"
    CONFIG = "config"


class CandidateStatus(StrEnum):
    OK = "ok"
    SKIPPED = "skipped"


class SkipReason(StrEnum):
    DISABLED = "disabled"
    PRIVATE = "private"
    GATED = "gated"
    ADAPTER = "adapter"
    QUANTIZED = "quantized"
    MERGE = "merge"
    NO_WEIGHTS = "no_weights"
    PICKLE_ONLY = "pickle_only"
    TOO_LARGE = "too_large"
    UNKNOWN_SIZE = "unknown_size"  # no parameter count in the listing and none readable from the weights' headers
    INVALID_CONFIG = "invalid_config"
    NO_CONFIG = "no_config"
    REMOTE_CODE = "remote_code"
    ARCHITECTURE_MISMATCH = "architecture_mismatch"


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A model at a resolved commit: ``revision`` is always a 40-hex sha once stored."""

    repo_id: str
    revision: str

    def __post_init__(self):
        if not SHA_RE.match(self.revision):
            raise ValueError(f"revision of {self.repo_id} must be a 40-hex commit sha, got {self.revision!r}")

    def __str__(self) -> str:
        return f"{self.repo_id}@{self.revision[:8]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchSignature:
    """What makes two checkpoints interchangeable starting points: the config fields IBM matched on."""

    model_type: str
    hidden_size: int | None
    num_hidden_layers: int | None
    num_attention_heads: int | None
    vocab_size: int | None

    @classmethod
    def from_config(cls, config: dict) -> ArchSignature:
        """Read the signature from a config.json dict (T5-style names are mapped too)."""

        def pick(*names):
            for name in names:
                value = config.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
            return None

        model_type = config.get("model_type")
        if not isinstance(model_type, str) or not model_type:
            raise ValueError("config.json has no model_type")
        return cls(
            model_type=model_type,
            hidden_size=pick("hidden_size", "d_model", "dim", "n_embd"),
            num_hidden_layers=pick("num_hidden_layers", "num_layers", "n_layers", "n_layer"),
            num_attention_heads=pick("num_attention_heads", "num_heads", "n_heads", "n_head"),
            vocab_size=pick("vocab_size"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseModel:
    """A pretrained checkpoint that defines an architecture family."""

    repo_id: str
    sha: str
    aliases: tuple[str, ...]
    signature: ArchSignature
    num_params: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A finetuned descendant of a base (or a model the crawler looked at and skipped, with a reason)."""

    repo_id: str
    base_id: str
    sha: str
    kind: Kind
    match: Match
    status: CandidateStatus
    skip_reason: SkipReason | None = None
    downloads: int = 0
    likes: int = 0
    license: str | None = None
    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    last_modified: datetime | None = None
    num_params: int | None = None
    has_safetensors: bool = False
    first_seen: datetime | None = None
    updated_at: datetime | None = None

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.repo_id, self.sha)


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """One (model at a sha, scorer) unit of work."""

    id: int
    repo_id: str
    revision: str
    scorer: str
    status: JobStatus
    attempts: int = 0
    error: str | None = None
    base_id: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_until: datetime | None = None
    worker: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    """One number a scorer produced. Values are in natural units (accuracy in [0, 1], losses in nats)."""

    repo_id: str
    revision: str
    scorer: str
    metric: str
    value: float
    target: str = ""
    seed: int = -1
    config_hash: str = ""
    config_json: str = "{}"
    source: str = "project"
    duration_s: float | None = None
    created_at: datetime | None = None
    extra: dict = field(default_factory=dict)
    base_id: str = ""  # the base whose leaderboard this score belongs to
    status: str = "ok"  # "ok"; "failed": a run that failed a check; "out_of_range": a bound, not a measurement
    # (any status but "ok" is stored and shown, never averaged or ranked)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedBundle:
    """One bundled data set (the study snapshot, IBM's published results) at one version, applied to a store."""

    name: str
    version: str  # sha256 of the bundled bytes
    applied_at: datetime
    added: int  # rows the store lacked and got
    skipped: int  # rows the store already had (its own data wins)


PERSONAL_JOB = "personal"  # the jobs table's scorer column of a personal ranking's job (one job per request)


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonalRequest:
    """A personal ranking of a base's candidates on a user's own rows, and its job. The rows themselves live apart
    (the store's ``personal_rows``, by content hash) only while the job needs them; this record holds none."""

    id: str  # the shareable token (the results' URL): random, never shown in the public job list
    job_id: int
    base_id: str
    data_hash: str  # sha256 of the rows (data.user_data.UserData.data_hash)
    source: str  # "upload:<file name>" or "hub:<id>..."
    summary: dict  # rows, classes, column names: counts and names, no row content
    top_k: int
    status: JobStatus  # the job's
    models: tuple[dict, ...] = ()  # the models named (name, path, revision); (): the base and its top K
    error: str | None = None
    progress: tuple[dict, ...] = ()  # one entry per model scored so far
    result: PersonalRanking | None = None  # the finished ranking (service/personal.py)
    created_at: datetime | None = None
    expires_at: datetime | None = None
