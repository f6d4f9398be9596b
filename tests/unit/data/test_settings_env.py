"""Settings.from_env, variable by variable: every ``MRL_*`` variable data/settings.py reads, plus ``HF_ENDPOINT`` and
``HF_TOKEN``. A good value lands in its own field (and only there) with the field's type; each bad value raises a
ValueError that names the variable. The variables are read from the source, so a new one without a case here fails.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from data import settings as settings_module
from data.settings import Settings

SOURCE = Path(settings_module.__file__).read_text(encoding="utf-8")
READ_IN_SOURCE = frozenset(re.findall(r"[\"']((?:MRL|HF)_[A-Z0-9_]+)[\"']", SOURCE))

# variable -> (the value set, the field it lands in, the value and type the field must then hold)
GOOD = {
    "MRL_DB": ("/srv/mrl/board.db", "db_path", Path("/srv/mrl/board.db")),
    "HF_ENDPOINT": ("http://127.0.0.1:8080/", "hub_endpoint", "http://127.0.0.1:8080"),
    "HF_TOKEN": ("hf_abc123", "hub_token", "hf_abc123"),
    "MRL_CACHE_DIR": ("/srv/mrl/cache", "cache_dir", Path("/srv/mrl/cache")),
    "MRL_MODELS_DIR": ("/srv/mrl/models", "models_dir", Path("/srv/mrl/models")),
    "MRL_STUDY_DIR": ("/srv/mrl/study", "study_dir", Path("/srv/mrl/study")),
    "MRL_LOG_LEVEL": ("debug", "log_level", "DEBUG"),
    "MRL_CRAWL_CONCURRENCY": ("3", "crawl_concurrency", 3),
    "MRL_MAX_PARAMS": ("123456", "max_params", 123_456),
    "MRL_JOB_MAX_ATTEMPTS": ("5", "job_max_attempts", 5),
    "MRL_TOP_K": ("4", "top_k", 4),
    "MRL_SUBMIT_LIMIT_PER_HOUR": ("7", "submit_limit_per_hour", 7),
    "MRL_SUBMIT_ATTEMPTS_PER_HOUR": ("9", "submit_attempts_per_hour", 9),
    "MRL_JOB_LEASE_S": ("90.5", "job_lease_s", 90.5),
    "MRL_SUBMIT_TIMEOUT_S": ("2.5", "submit_timeout_s", 2.5),
    "MRL_HEADER_TIMEOUT_S": ("3.5", "header_timeout_s", 3.5),
    "MRL_BODY_TIMEOUT_S": ("45", "body_timeout_s", 45.0),
    "MRL_TRUSTED_PROXIES": ("10.0.0.1, 192.168.0.0/16,", "trusted_proxies", ("10.0.0.1", "192.168.0.0/16")),
    "MRL_SUITE": ("sst2,rte", "suite", "sst2,rte"),
    "MRL_REFERENCE_CORPUS": ("/srv/corpus.txt", "reference_corpus", "/srv/corpus.txt"),
    "MRL_SNAPSHOT": ("/srv/study.json", "snapshot_path", Path("/srv/study.json")),
    "MRL_PUBLISHED": ("/srv/published", "published_path", Path("/srv/published")),
    "MRL_CRAWL_BACKOFF_BASE_S": ("0.25", "crawl_backoff_base_s", 0.25),
    "MRL_PERSONAL_TOP_K": ("3", "personal_top_k", 3),
    "MRL_PERSONAL_MAX_ROWS": ("500", "personal_max_rows", 500),
    "MRL_PERSONAL_MAX_BYTES": ("4096", "personal_max_bytes", 4096),
    "MRL_PERSONAL_LIMIT_PER_HOUR": ("2", "personal_limit_per_hour", 2),
    "MRL_PERSONAL_TTL_S": ("60.5", "personal_ttl_s", 60.5),
    "MRL_PERSONAL_ROWS_MAX_S": ("120", "personal_rows_max_s", 120.0),
    "MRL_PERSONAL_PURGE_EVERY_S": ("15", "personal_purge_every_s", 15.0),
    "MRL_PERSONAL_UPLOAD_KEEP_S": ("600", "personal_upload_keep_s", 600.0),
    "MRL_PERSONAL_KEEP_ROWS_S": ("30", "personal_keep_rows_s", 30.0),
}

# variable -> [(bad value, what the message must say after the variable's name)]
_WHOLE = [("many", "must be a whole number"), ("1.5", "must be a whole number"), ("", "must be a whole number"),
          ("0", "must be positive"), ("-3", "must be positive")]
_SECONDS = [("soon", "must be a number"), ("", "must be a number"), ("0", "must be positive"),
            ("-1", "must be positive"), ("nan", "must be positive"), ("inf", "must be positive and finite")]
BAD = {
    "MRL_DB": [("", "must be a path"), ("  ", "must be a path")],
    "MRL_CACHE_DIR": [("", "must be a path")],
    "MRL_STUDY_DIR": [(" ", "must be a path")],
    "HF_ENDPOINT": [("huggingface.co", "must be an http:// or https:// URL"),
                    ("ftp://127.0.0.1", "must be an http:// or https:// URL"),
                    ("http://", "must be an http:// or https:// URL")],
    "MRL_LOG_LEVEL": [("loud", "must be one of DEBUG, INFO"), ("", "must be one of"), ("NOTSET", "must be one of")],
    "MRL_CRAWL_CONCURRENCY": _WHOLE,
    "MRL_MAX_PARAMS": _WHOLE,
    "MRL_JOB_MAX_ATTEMPTS": _WHOLE,
    "MRL_TOP_K": _WHOLE,
    "MRL_SUBMIT_LIMIT_PER_HOUR": _WHOLE,
    "MRL_SUBMIT_ATTEMPTS_PER_HOUR": _WHOLE,
    "MRL_JOB_LEASE_S": _SECONDS,
    "MRL_SUBMIT_TIMEOUT_S": _SECONDS,
    "MRL_HEADER_TIMEOUT_S": _SECONDS,
    "MRL_BODY_TIMEOUT_S": _SECONDS,
    "MRL_CRAWL_BACKOFF_BASE_S": _SECONDS,
    "MRL_PERSONAL_TOP_K": _WHOLE,
    "MRL_PERSONAL_MAX_ROWS": _WHOLE,
    "MRL_PERSONAL_MAX_BYTES": _WHOLE,
    "MRL_PERSONAL_LIMIT_PER_HOUR": _WHOLE,
    "MRL_PERSONAL_TTL_S": _SECONDS,
    "MRL_PERSONAL_ROWS_MAX_S": _SECONDS,
    "MRL_PERSONAL_PURGE_EVERY_S": _SECONDS,
    "MRL_PERSONAL_UPLOAD_KEEP_S": _SECONDS,
    "MRL_PERSONAL_KEEP_ROWS_S": [("soon", "must be a number"), ("-1", "must be zero or more"),
                                 ("inf", "must be zero or more and finite")],
    "MRL_TRUSTED_PROXIES": [("proxy.internal", ": 'proxy.internal' is not an IP address or network"),
                            ("10.0.0.1,10.0.0.l", ": '10.0.0.l' is not an IP address or network")],
}
# Variables with no value that from_env can call bad: any text is a usable value, checked where it is used.
NO_BAD_VALUE = {
    "HF_TOKEN": "an opaque secret; the Hub says whether it is valid",
    "MRL_SUITE": "suite names resolve against the datasets directory, when a worker loads them (data/targets.py)",
    "MRL_REFERENCE_CORPUS": "'local' or a file path, opened by the free-energy scorer",
    "MRL_SNAPSHOT": "a path or 'none'; a bad file is logged when the bundle is seeded",
    "MRL_PUBLISHED": "a path or 'none'; as MRL_SNAPSHOT",
    "MRL_MODELS_DIR": "a path or 'none'; a missing folder means no local models are offered",
}
# Set to the empty string, these mean "unset" (the default stays), as the shell's VAR= does.
EMPTY_IS_UNSET = ("HF_ENDPOINT", "HF_TOKEN", "MRL_TRUSTED_PROXIES", "MRL_SUITE", "MRL_REFERENCE_CORPUS",
                  "MRL_SNAPSHOT", "MRL_PUBLISHED", "MRL_MODELS_DIR")

BAD_CASES = [(name, value, message) for name, cases in BAD.items() for value, message in cases]


def test_every_variable_the_source_reads_has_cases_here():
    assert len(READ_IN_SOURCE) >= 19, "the regex no longer finds the variables in data/settings.py"
    assert set(GOOD) == READ_IN_SOURCE, "a variable read by from_env needs a good value here (or one is gone)"
    assert set(BAD) | set(NO_BAD_VALUE) == READ_IN_SOURCE and not set(BAD) & set(NO_BAD_VALUE)
    assert set(EMPTY_IS_UNSET) <= READ_IN_SOURCE
    fields = [field for _, field, _ in GOOD.values()]
    assert len(set(fields)) == len(fields), "two variables land in one field"


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_good_value_lands_in_its_own_field_with_its_type(name):
    raw, field, expected = GOOD[name]
    default = Settings.from_env({})
    assert getattr(default, field) != expected, "the case must not use the default value"
    got = Settings.from_env({name: raw})
    value = getattr(got, field)
    assert value == expected and type(value) is type(expected)
    if isinstance(value, tuple):
        assert all(type(item) is str for item in value)
    changed = {f.name for f in dataclasses.fields(Settings) if getattr(got, f.name) != getattr(default, f.name)}
    assert changed == {field}


def test_all_good_values_together_give_each_field_its_value():
    got = Settings.from_env({name: raw for name, (raw, _, _) in GOOD.items()})
    assert {field: getattr(got, field) for _, field, _ in GOOD.values()} == {
        field: expected for _, field, expected in GOOD.values()}


def test_an_unset_environment_gives_the_dataclass_defaults():
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize("name", EMPTY_IS_UNSET)
def test_an_empty_value_keeps_the_default(name):
    assert Settings.from_env({name: ""}) == Settings()


@pytest.mark.parametrize(("name", "value", "message"), BAD_CASES)
def test_a_bad_value_is_refused_naming_the_variable(name, value, message):
    with pytest.raises(ValueError, match=re.escape(f"{name}{'' if message.startswith(':') else ' '}{message}")):
        Settings.from_env({name: value})


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_is_refused_among_good_ones(name):
    env = {other: raw for other, (raw, _, _) in GOOD.items() if other != name}
    with pytest.raises(ValueError, match=re.escape(name)):
        Settings.from_env({**env, name: BAD[name][0][0]})


def test_the_cli_reports_a_bad_variable_in_one_line_without_the_usage(monkeypatch, capsys, tmp_path):
    from data.__main__ import main

    monkeypatch.setenv("MRL_JOB_LEASE_S", "-5")
    with pytest.raises(SystemExit) as exit_info:
        main(["migrate", "--db", str(tmp_path / "x.db")])
    assert exit_info.value.code == 2
    [line] = capsys.readouterr().err.splitlines()  # as every other entry point: no usage text before it
    assert line.startswith("error: MRL_JOB_LEASE_S must be positive")
    assert not (tmp_path / "x.db").exists()
