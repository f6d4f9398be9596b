"""The store's schema: SQLite migrations in order (``PRAGMA user_version`` = how many have run) and the
column lists the queries use. Part of the store package, the only place with SQL."""

from typing import NamedTuple

MIGRATIONS: tuple[str, ...] = (
    # 1: bases, candidates, jobs, scores
    """
    CREATE TABLE bases (
        repo_id TEXT PRIMARY KEY,
        sha TEXT NOT NULL,
        aliases TEXT NOT NULL DEFAULT '[]',
        model_type TEXT NOT NULL,
        hidden_size INTEGER,
        num_hidden_layers INTEGER,
        num_attention_heads INTEGER,
        vocab_size INTEGER,
        num_params INTEGER,
        added_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE candidates (
        base_id TEXT NOT NULL REFERENCES bases(repo_id),
        repo_id TEXT NOT NULL,
        sha TEXT NOT NULL,
        kind TEXT NOT NULL,
        match TEXT NOT NULL,
        status TEXT NOT NULL,
        skip_reason TEXT,
        downloads INTEGER NOT NULL DEFAULT 0,
        likes INTEGER NOT NULL DEFAULT 0,
        license TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        pipeline_tag TEXT,
        last_modified TEXT,
        num_params INTEGER,
        has_safetensors INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (base_id, repo_id)
    );
    CREATE INDEX candidates_status ON candidates(base_id, status);
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        repo_id TEXT NOT NULL,
        revision TEXT NOT NULL,
        scorer TEXT NOT NULL,
        base_id TEXT,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT,
        lease_until TEXT,
        worker TEXT,
        UNIQUE (repo_id, revision, scorer)
    );
    CREATE INDEX jobs_status ON jobs(status, id);
    CREATE TABLE scores (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        repo_id TEXT NOT NULL,
        revision TEXT NOT NULL,
        scorer TEXT NOT NULL,
        metric TEXT NOT NULL,
        target TEXT NOT NULL DEFAULT '',
        seed INTEGER NOT NULL DEFAULT -1,
        value REAL NOT NULL,
        config_hash TEXT NOT NULL,
        config_json TEXT NOT NULL DEFAULT '{}',
        source TEXT NOT NULL,
        duration_s REAL,
        extra TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        UNIQUE (source, repo_id, revision, scorer, metric, target, seed, config_hash)
    );
    CREATE INDEX scores_model ON scores(repo_id, revision);
    """,
    # 2: every score names the base whose leaderboard it belongs to (published rows have no crawled candidate)
    """
    ALTER TABLE scores ADD COLUMN base_id TEXT NOT NULL DEFAULT '';
    CREATE INDEX scores_base ON scores(base_id, source);
    """,
    # 3: a change counter, bumped by every write of candidates, jobs or scores (a cheap cache key)
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO meta (key, value) VALUES ('data_version', 0);
    """,
    # 4: which version of each bundled data set (study snapshot, published results) has seeded this store, so
    # seeding runs once per version and a row a deployment deleted is not re-added at the next start
    """
    CREATE TABLE bundles_applied (
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        applied_at TEXT NOT NULL,
        added INTEGER NOT NULL,
        skipped INTEGER NOT NULL,
        PRIMARY KEY (name, version)
    );
    """,
    # 5: the submission rate limit's events, in the store so it holds across processes and restarts: every
    # attempt that reaches the Hub ('attempt') and every accepted new model ('new'), per submitter
    """
    CREATE TABLE submission_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        submitter TEXT NOT NULL,
        kind TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX submission_events_by_submitter ON submission_events(submitter, kind, at);
    """,
    # 6: a score's status: 'failed' for a run that failed a check (one class predicted, no better than the
    # majority class, training loss not falling): stored and counted, never averaged or ranked
    """
    ALTER TABLE scores ADD COLUMN status TEXT NOT NULL DEFAULT 'ok';
    """,
    # 7: personal rankings (a user's own rows ranked across a base's candidates): the request, which a random
    # token names, and the rows by content hash, kept apart and only while a job needs them
    """
    CREATE TABLE personal_requests (
        id TEXT PRIMARY KEY,
        job_id INTEGER NOT NULL UNIQUE REFERENCES jobs(id),
        base_id TEXT NOT NULL,
        data_hash TEXT NOT NULL,
        source TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '{}',
        top_k INTEGER NOT NULL,
        progress TEXT NOT NULL DEFAULT '[]',
        result TEXT,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    CREATE INDEX personal_requests_data ON personal_requests(data_hash);
    CREATE TABLE personal_rows (
        data_hash TEXT PRIMARY KEY,
        rows TEXT NOT NULL,
        keep_until TEXT NOT NULL,
        expires_at TEXT NOT NULL
    );
    """,
    # 8: a personal ranking over the models a user names (Hub ids, local folders): [] for the base and its top K
    """
    ALTER TABLE personal_requests ADD COLUMN models TEXT NOT NULL DEFAULT '[]';
    """,
)

CANDIDATE_COLUMNS = (
    "base_id, repo_id, sha, kind, match, status, skip_reason, downloads, likes, license, tags, "
    "pipeline_tag, last_modified, num_params, has_safetensors, first_seen, updated_at"
)
JOB_COLUMNS = (
    "id, repo_id, revision, scorer, base_id, status, attempts, error, created_at, started_at, "
    "finished_at, lease_until, worker"
)
SCORE_COLUMNS = (
    "repo_id, revision, scorer, metric, target, seed, value, config_hash, config_json, source, "
    "duration_s, extra, created_at, base_id, status"
)
class ScoreRow(NamedTuple):
    """The columns of a score a leaderboard is built from (``Store.score_rows``)."""

    repo_id: str
    revision: str
    scorer: str
    metric: str
    target: str
    seed: int
    value: float
    config_hash: str
    status: str


SCORE_FRAME_COLUMNS = ScoreRow._fields
