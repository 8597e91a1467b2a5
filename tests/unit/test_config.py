"""Configuration layers: defaults < file + conf.d < environment < overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctibridge.config import load
from ctibridge.errors import ConfigError


def test_defaults_are_the_embedded_ones() -> None:
    settings = load(None, {})
    assert settings.storage_url.startswith("sqlite+aiosqlite:///")
    assert settings.storage_url.endswith("/data/ctibridge.db")
    assert settings.calls.internal_digits == 5 and not settings.kazoo.enabled


def test_layers_override_in_order(tmp_path: Path) -> None:
    main = tmp_path / "ctibridge.toml"
    main.write_text('log_level = "DEBUG"\n[web]\nport = 9000\n[calls]\ninternal_digits = 4\n')
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-site.toml").write_text("[web]\nport = 9100\n")
    env = {
        "CTIBRIDGE_CONFIG": str(main),
        "CTIBRIDGE_CALLS_INTERNAL_DIGITS": "6",
        "CTIBRIDGE_KAZOO_ACCOUNT_IDS": "a1, a2",
    }
    settings = load(None, env, {"web": {"host": "0.0.0.0"}})
    assert settings.log_level == "DEBUG"
    assert settings.web.port == 9100 and settings.web.host == "0.0.0.0"
    assert settings.calls.internal_digits == 6
    assert settings.kazoo.account_ids == ("a1", "a2")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CTIBRIDGE_WEB_PORT": "eighty"}, "web.port"),
        ({"CTIBRIDGE_NOPE_X": "1"}, "CTIBRIDGE_NOPE_X"),
        ({"CTIBRIDGE_WEB_COLOUR": "red"}, "colour"),
        ({"CTIBRIDGE_KAZOO_ENABLED": "true"}, "api_key"),
        ({"CTIBRIDGE_CALLS_INTERNAL_DIGITS": "0"}, "internal_digits"),
        ({"CTIBRIDGE_CALLS_RESTORE_WINDOW_HOURS": "-1"}, "calls.restore_window_hours"),
        ({"CTIBRIDGE_CALLS_CONTEXT_RETENTION_HOURS": "0"}, "calls.context_retention_hours"),
        ({"CTIBRIDGE_KAZOO_QUEUE_SIZE": "0"}, "kazoo.queue_size"),
        ({"CTIBRIDGE_ASTERISK_QUEUE_SIZE": "-1"}, "asterisk.queue_size"),
        ({"CTIBRIDGE_WEB_TLS_CERT": "/x.pem"}, "tls_key"),
        ({"CTIBRIDGE_CONFIG": "/nonexistent/ctibridge.toml"}, "does not exist"),
    ],
)
def test_bad_configuration_is_a_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(None, env)


def test_a_broken_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[web\nport=1")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load(str(path), {})
