"""Settings as data: one frozen dataclass built by one pure function.

`load_settings(data_dir, env)` reads `DIR/fristed.toml` and the secret files
beside it; `build_settings(...)` is the pure part tests call with plain dicts.
A bad value fails at start with the name of the setting.
"""

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

CONFIG_NAME = "fristed.toml"
SECRET_NAME = "secret_key"  # noqa: S105 (a file name, not a secret)
DATABASE_NAME = "fristed.db"
MIB = 1024 * 1024

# Defaults, written into a new fristed.toml by `fristed init` and documented there.
DEFAULTS: dict[str, object] = {
    "public_url": "http://127.0.0.1:8080",
    "retention_days": 30,
    "audit_retention_days": 365,
    "quick_exit_url": "https://www.dr.dk/",
    "kdf": {"ops": 3, "mem": 64 * MIB},
    "limits": {"max_text_chars": 10_000, "max_envelope_bytes": 131_072},
    "staff": {"session_idle_minutes": 30, "session_max_hours": 12},
    "purge": {"interval_minutes": 60},
    "proxy": {"client_address_header": ""},
    "smtp": {"host": "", "port": 25, "sender": "fristed@localhost", "username": "", "starttls": False, "tls": False,
             "coalesce_minutes": 5},
}


class SettingsError(Exception):
    """A setting is missing or has a bad value; the message names it."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    port: int = 25
    sender: str = "fristed@localhost"
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    tls: bool = False
    # At most one notification e-mail per consultant per this many minutes (issue 8); 0 = one per event batch.
    coalesce_minutes: int = 5

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    secret_key: bytes = field(repr=False)
    public_url: str = "http://127.0.0.1:8080"
    retention_days: int = 30
    audit_retention_days: int = 365
    quick_exit_url: str = "https://www.dr.dk/"
    kdf_ops: int = 3
    kdf_mem: int = 64 * MIB
    max_text_chars: int = 10_000
    max_envelope_bytes: int = 131_072
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    purge_interval_minutes: int = 60
    # The one header a reverse proxy puts the client address in (rate limits only, never stored); "" = none.
    client_address_header: str = ""
    smtp: SmtpSettings = SmtpSettings()

    @property
    def max_body_bytes(self) -> int:
        """Largest request body accepted: an envelope plus room for the other fields."""
        return self.max_envelope_bytes + 16 * 1024


def default_database_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / DATABASE_NAME).resolve()}"


def _int(config: Mapping, name: str, key: str, low: int, high: int) -> int:
    value = config.get(key, _lookup(DEFAULTS, name))
    if type(value) is not int or not low <= value <= high:
        raise SettingsError(f"setting {name} must be an integer from {low} to {high}")
    return value


def _str(config: Mapping, name: str, key: str) -> str:
    value = config.get(key, _lookup(DEFAULTS, name))
    if not isinstance(value, str):
        raise SettingsError(f"setting {name} must be a string")
    return value


def _bool(config: Mapping, name: str, key: str) -> bool:
    value = config.get(key, _lookup(DEFAULTS, name))
    if not isinstance(value, bool):
        raise SettingsError(f"setting {name} must be true or false")
    return value


def _lookup(tree: Mapping, dotted: str) -> object:
    node: object = tree
    for part in dotted.split("."):
        node = node[part] if isinstance(node, Mapping) else None  # type: ignore[index]
    return node


def _table(config: Mapping, name: str) -> Mapping:
    table = config.get(name, {})
    if not isinstance(table, Mapping):
        raise SettingsError(f"setting [{name}] must be a table")
    return table


def _url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"setting {name} must be an http(s) URL")
    return value.rstrip("/")


def _header(value: str) -> str:
    if value and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
        raise SettingsError("setting proxy.client_address_header must be a header name like X-Real-IP, or empty")
    return value


def build_settings(
    data_dir: Path, config: Mapping, env: Mapping[str, str], secret_key: bytes, smtp_password: str = ""
) -> Settings:
    """The pure part: plain data in, validated `Settings` out."""
    if len(secret_key) != 32:
        raise SettingsError(f"secret file {SECRET_NAME} must hold 32 bytes")
    kdf, limits = _table(config, "kdf"), _table(config, "limits")
    staff, purge, smtp = _table(config, "staff"), _table(config, "purge"), _table(config, "smtp")
    return Settings(
        data_dir=data_dir,
        database_url=env.get("FRISTED_DATABASE_URL") or default_database_url(data_dir),
        secret_key=secret_key,
        public_url=_url(_str(config, "public_url", "public_url"), "public_url"),
        retention_days=_int(config, "retention_days", "retention_days", 1, 3650),
        audit_retention_days=_int(config, "audit_retention_days", "audit_retention_days", 1, 3650),
        quick_exit_url=_url(_str(config, "quick_exit_url", "quick_exit_url"), "quick_exit_url"),
        # libsodium's limits: ops >= 1, mem >= 8 KiB; above 1 GiB is a mistake on this kind of server.
        kdf_ops=_int(kdf, "kdf.ops", "ops", 1, 20),
        kdf_mem=_int(kdf, "kdf.mem", "mem", 8192, 1024 * MIB),
        max_text_chars=_int(limits, "limits.max_text_chars", "max_text_chars", 100, 50_000),
        max_envelope_bytes=_int(limits, "limits.max_envelope_bytes", "max_envelope_bytes", 4096, 1024 * 1024),
        session_idle_minutes=_int(staff, "staff.session_idle_minutes", "session_idle_minutes", 1, 24 * 60),
        session_max_hours=_int(staff, "staff.session_max_hours", "session_max_hours", 1, 7 * 24),
        purge_interval_minutes=_int(purge, "purge.interval_minutes", "interval_minutes", 1, 7 * 24 * 60),
        client_address_header=_header(_str(_table(config, "proxy"), "proxy.client_address_header", "client_address_header")),
        smtp=SmtpSettings(
            host=_str(smtp, "smtp.host", "host"),
            port=_int(smtp, "smtp.port", "port", 1, 65535),
            sender=_str(smtp, "smtp.sender", "sender"),
            username=_str(smtp, "smtp.username", "username"),
            password=smtp_password,
            starttls=_bool(smtp, "smtp.starttls", "starttls"),
            tls=_bool(smtp, "smtp.tls", "tls"),
            coalesce_minutes=_int(smtp, "smtp.coalesce_minutes", "coalesce_minutes", 0, 1440),
        ),
    )


def resolve_data_dir(value: str | None, env: Mapping[str, str]) -> Path:
    chosen = value or env.get("FRISTED_DATA_DIR")
    if not chosen:
        raise SettingsError("no data directory: pass --data-dir or set FRISTED_DATA_DIR")
    return Path(chosen).expanduser().resolve()


def load_settings(data_dir: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read `DIR/fristed.toml` and the secrets beside it."""
    env = os.environ if env is None else env
    path = data_dir / CONFIG_NAME
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{path} not found: run `fristed init --data-dir {data_dir}` first") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path} cannot be read: {exc}") from None
    try:
        secret = (data_dir / SECRET_NAME).read_bytes()
    except OSError:
        raise SettingsError(f"secret file {data_dir / SECRET_NAME} is missing or unreadable") from None
    password_file = data_dir / "smtp_password"
    password = password_file.read_text(encoding="utf-8").strip() if password_file.exists() else ""
    return build_settings(data_dir, config, env, secret, password)
