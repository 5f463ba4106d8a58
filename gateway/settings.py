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
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.i18n import LANGUAGES

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
    # Words for the citizen pages (issue 12): "" = the translated default sentence.
    "organisation_name": "Fristed",
    "reply_promise": "",
    "next_steps": "",
    "duty_hours": "",
    "timezone": "Europe/Copenhagen",
    "kdf": {"ops": 3, "mem": 64 * MIB},
    "limits": {
        "max_text_chars": 10_000,
        "max_envelope_bytes": 131_072,
        "max_messages_per_thread": 200,
        "max_thread_bytes": 4 * MIB,
        "max_new_threads_per_team_per_hour": 600,
    },
    # Proof of work for anonymous writes (INTERFACES.md 1.1, gateway/pow.py).
    "pow": {
        "floor_bits": 0,
        "flood_bits": 8,
        "max_bits": 14,
        "writes_per_minute": 300,
        "window_seconds": 60,
        "challenge_seconds": 300,
        "ops": 1,
        "mem": 1 * MIB,
    },
    # Per-client limits, in memory only, keyed by a keyed hash rotated hourly (gateway/limits.py).
    "rate": {
        "per_client": True,
        "create_burst": 200,
        "create_per_minute": 60,
        "reply_burst": 300,
        "reply_per_minute": 120,
        "failed_open_burst": 10,
        "failed_open_per_minute": 2,
        "noscript_burst": 30,
        "noscript_per_minute": 10,
    },
    "staff": {"session_idle_minutes": 30, "session_max_hours": 12},
    "purge": {"interval_minutes": 60},
    "proxy": {"client_address_header": ""},
    "log": {"citizen_requests": False},
    "help": {
        "emergency_number": "112",
        "police_number": "114",
        "helpline_name": "Lev Uden Vold",
        "helpline_number": "1888",
        "helpline_always_open": True,
    },
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
class HelpSettings:
    """What `#emergency` on every citizen page says (Danish defaults; another country sets its own)."""

    emergency_number: str = "112"
    police_number: str = "114"
    helpline_name: str = "Lev Uden Vold"
    helpline_number: str = "1888"
    helpline_always_open: bool = True


@dataclass(frozen=True)
class PowSettings:
    """Proof of work: `bits` is `floor_bits` at a normal pace and rises from `flood_bits` towards
    `max_bits` while anonymous writes across all processes exceed `writes_per_minute`."""

    floor_bits: int = 0
    flood_bits: int = 8
    max_bits: int = 14
    writes_per_minute: int = 300
    window_seconds: int = 60
    challenge_seconds: int = 300
    ops: int = 1
    mem: int = 1 * MIB


@dataclass(frozen=True)
class Bucket:
    """A token bucket: `burst` at once, then `per_minute` (0 = no limit)."""

    burst: int
    per_minute: int


@dataclass(frozen=True)
class RateSettings:
    per_client: bool = True
    create: Bucket = Bucket(200, 60)
    reply: Bucket = Bucket(300, 120)
    failed_open: Bucket = Bucket(10, 2)
    noscript: Bucket = Bucket(30, 10)


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
    max_messages_per_thread: int = 200
    max_thread_bytes: int = 4 * MIB
    max_new_threads_per_team_per_hour: int = 600
    pow: PowSettings = PowSettings()
    rate: RateSettings = RateSettings()
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    purge_interval_minutes: int = 60
    # The one header a reverse proxy puts the client address in (rate limits only, never stored); "" = none.
    client_address_header: str = ""
    # Citizen requests in the access log: off; when on, counted per minute (gateway.app.AccessLogger, issue 10).
    log_citizen_requests: bool = False
    smtp: SmtpSettings = SmtpSettings()
    organisation_name: str = "Fristed"
    # Operator texts by language ("*" = every language); a missing language gets the translated default.
    reply_promise: Mapping[str, str] = field(default_factory=dict)
    next_steps: Mapping[str, str] = field(default_factory=dict)
    duty_hours: Mapping[str, str] = field(default_factory=dict)
    timezone: str = "Europe/Copenhagen"
    help: HelpSettings = HelpSettings()

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


def _texts(config: Mapping, name: str) -> dict[str, str]:
    """A text the operator may give once (every language) or per language: "…" or {da = "…", en = "…"}."""
    value = config.get(name, _lookup(DEFAULTS, name))
    if isinstance(value, str):
        return {"*": value.strip()} if value.strip() else {}
    if isinstance(value, Mapping) and all(k in LANGUAGES and isinstance(v, str) for k, v in value.items()):
        return {k: v.strip() for k, v in value.items() if v.strip()}
    raise SettingsError(f"setting {name} must be a string or a table of languages ({', '.join(LANGUAGES)}) to strings")


def _organisation(value: str) -> str:
    if not value.strip() or len(value) > 120:
        raise SettingsError("setting organisation_name must be a name of 1 to 120 characters")
    return value.strip()


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError("setting timezone must be an IANA time zone like Europe/Copenhagen") from None
    return value


def _phone(value: str, name: str, *, optional: bool = False) -> str:
    if (optional and not value) or re.fullmatch(r"\+?[0-9][0-9 -]{1,19}", value):
        return value
    raise SettingsError(f"setting {name} must be a phone number of digits (spaces, dashes and a leading + allowed)")


def _help(config: Mapping) -> HelpSettings:
    table = _table(config, "help")
    name = _str(table, "help.helpline_name", "helpline_name").strip()
    if len(name) > 80:
        raise SettingsError("setting help.helpline_name must be at most 80 characters")
    number = _phone(_str(table, "help.helpline_number", "helpline_number").strip(), "help.helpline_number", optional=True)
    if bool(name) != bool(number):
        raise SettingsError("settings help.helpline_name and help.helpline_number must both be set, or both empty")
    return HelpSettings(
        emergency_number=_phone(_str(table, "help.emergency_number", "emergency_number").strip(), "help.emergency_number"),
        police_number=_phone(_str(table, "help.police_number", "police_number").strip(), "help.police_number", optional=True),
        helpline_name=name,
        helpline_number=number,
        helpline_always_open=_bool(table, "help.helpline_always_open", "helpline_always_open"),
    )


def _pow(table: Mapping) -> PowSettings:
    mem = _int(table, "pow.mem", "mem", 8192, 256 * MIB)
    if mem & (mem - 1):
        # The challenge carries log2(mem) in one byte (gateway/pow.py).
        raise SettingsError("setting pow.mem must be a power of two (bytes), e.g. 1048576")
    floor = _int(table, "pow.floor_bits", "floor_bits", 0, 24)
    top = _int(table, "pow.max_bits", "max_bits", 0, 24)
    if top < floor:
        raise SettingsError("setting pow.max_bits must be at least pow.floor_bits")
    return PowSettings(
        floor_bits=floor,
        flood_bits=_int(table, "pow.flood_bits", "flood_bits", 1, 24),
        max_bits=top,
        writes_per_minute=_int(table, "pow.writes_per_minute", "writes_per_minute", 1, 10_000_000),
        window_seconds=_int(table, "pow.window_seconds", "window_seconds", 1, 3600),
        challenge_seconds=_int(table, "pow.challenge_seconds", "challenge_seconds", 60, 3600),
        ops=_int(table, "pow.ops", "ops", 1, 10),
        mem=mem,
    )


def _bucket(table: Mapping, name: str) -> Bucket:
    return Bucket(
        burst=_int(table, f"rate.{name}_burst", f"{name}_burst", 1, 10_000_000),
        per_minute=_int(table, f"rate.{name}_per_minute", f"{name}_per_minute", 0, 10_000_000),
    )


def _rate(table: Mapping) -> RateSettings:
    return RateSettings(
        per_client=_bool(table, "rate.per_client", "per_client"),
        create=_bucket(table, "create"),
        reply=_bucket(table, "reply"),
        failed_open=_bucket(table, "failed_open"),
        noscript=_bucket(table, "noscript"),
    )


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
        max_messages_per_thread=_int(limits, "limits.max_messages_per_thread", "max_messages_per_thread", 2, 100_000),
        max_thread_bytes=_int(limits, "limits.max_thread_bytes", "max_thread_bytes", 64 * 1024, 1024 * MIB),
        max_new_threads_per_team_per_hour=_int(
            limits, "limits.max_new_threads_per_team_per_hour", "max_new_threads_per_team_per_hour", 0, 10_000_000
        ),
        pow=_pow(_table(config, "pow")),
        rate=_rate(_table(config, "rate")),
        session_idle_minutes=_int(staff, "staff.session_idle_minutes", "session_idle_minutes", 1, 24 * 60),
        session_max_hours=_int(staff, "staff.session_max_hours", "session_max_hours", 1, 7 * 24),
        purge_interval_minutes=_int(purge, "purge.interval_minutes", "interval_minutes", 1, 7 * 24 * 60),
        client_address_header=_header(_str(_table(config, "proxy"), "proxy.client_address_header", "client_address_header")),
        log_citizen_requests=_bool(_table(config, "log"), "log.citizen_requests", "citizen_requests"),
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
        organisation_name=_organisation(_str(config, "organisation_name", "organisation_name")),
        reply_promise=_texts(config, "reply_promise"),
        next_steps=_texts(config, "next_steps"),
        duty_hours=_texts(config, "duty_hours"),
        timezone=_timezone(_str(config, "timezone", "timezone")),
        help=_help(config),
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
