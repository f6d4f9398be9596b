"""Settings.from_env: the variables a deployment sets for hostile-input defences, good and bad values."""

from __future__ import annotations

import pytest

from data.settings import DEFAULT_PUBLISHED, Settings


def test_defaults_trust_no_proxy_and_bound_submissions():
    s = Settings.from_env({})
    assert s.trusted_proxies == () and s.submit_attempts_per_hour == 60 and s.submit_limit_per_hour == 20
    assert s.submit_timeout_s == 10.0 and s.published_path == DEFAULT_PUBLISHED


def test_good_values_are_read():
    s = Settings.from_env({"MRL_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2,", "MRL_SUBMIT_ATTEMPTS_PER_HOUR": "5",
                           "MRL_SUBMIT_TIMEOUT_S": "2.5", "MRL_PUBLISHED": "none"})
    assert s.trusted_proxies == ("10.0.0.1", "10.0.0.2") and s.submit_attempts_per_hour == 5
    assert s.submit_timeout_s == 2.5 and s.published_path is None


@pytest.mark.parametrize(("name", "value", "message"), [
    ("MRL_SUBMIT_ATTEMPTS_PER_HOUR", "0", "must be positive"),
    ("MRL_SUBMIT_ATTEMPTS_PER_HOUR", "many", "must be a whole number"),
    ("MRL_SUBMIT_TIMEOUT_S", "-1", "must be positive"),
    ("MRL_SUBMIT_TIMEOUT_S", "soon", "must be a number"),
    ("MRL_SUBMIT_TIMEOUT_S", "nan", "must be positive"),
])
def test_bad_values_are_refused_naming_the_variable(name, value, message):
    with pytest.raises(ValueError, match=f"{name} {message}"):
        Settings.from_env({name: value})
