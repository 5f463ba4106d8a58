"""Settings: one pure function; a bad value names the setting."""

from pathlib import Path

import pytest

from gateway.settings import SettingsError, build_settings, load_settings

SECRET = b"s" * 32


def settings(config, env=None):
    return build_settings(Path("/srv/fristed"), config, env or {}, SECRET)


def test_defaults_are_the_documented_ones():
    s = settings({})
    assert (s.retention_days, s.kdf_ops, s.kdf_mem) == (30, 3, 64 * 1024 * 1024)
    assert s.database_url == "sqlite+aiosqlite:////srv/fristed/fristed.db"
    assert not s.smtp.enabled


def test_the_database_url_can_come_from_the_environment():
    url = "postgresql+asyncpg://u@/db?host=/tmp"
    assert settings({}, {"FRISTED_DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize(
    ("config", "name"),
    [
        ({"retention_days": 0}, "retention_days"),
        ({"retention_days": "30"}, "retention_days"),
        ({"kdf": {"ops": 0}}, "kdf.ops"),
        ({"kdf": {"mem": 100}}, "kdf.mem"),
        ({"public_url": "ftp://x"}, "public_url"),
        ({"quick_exit_url": "javascript:alert(1)"}, "quick_exit_url"),
        ({"smtp": {"port": 70000}}, "smtp.port"),
        ({"smtp": {"starttls": "yes"}}, "smtp.starttls"),
        ({"smtp": "mail.example"}, "[smtp]"),
    ],
)
def test_a_bad_value_fails_with_the_name_of_the_setting(config, name):
    with pytest.raises(SettingsError, match=name.replace("[", r"\[").replace("]", r"\]")):
        settings(config)


def test_a_short_secret_is_refused():
    with pytest.raises(SettingsError, match="secret_key"):
        build_settings(Path("/x"), {}, {}, b"short")


def test_a_missing_config_file_tells_the_operator_what_to_do(tmp_path):
    with pytest.raises(SettingsError, match="fristed init"):
        load_settings(tmp_path)
