"""`fristed init --data-dir DIR [--demo]`: a new deployment."""

import argparse
import os
import secrets
import sys
from pathlib import Path

import nacl.utils
import pyotp
import segno
from nacl.public import PrivateKey

from crypto import derive_staff, seal_key_blob
from gateway.db import Database
from gateway.migrate import upgrade
from gateway.models import Duty
from gateway.services import audit
from gateway.services.consultants import Enrolment, complete_enrolment, create_consultant
from gateway.services.keys import rotate_team_key
from gateway.services.meta import set_code_salt
from gateway.services.teams import add_team
from gateway.settings import CONFIG_NAME, SECRET_NAME, Settings, load_settings, resolve_data_dir
from ops.common import CliError, ensure_reachable

DEFAULT_URL = "http://127.0.0.1:8080"

CONFIG_TEMPLATE = """\
# Fristed configuration. Secrets live in files beside this one (mode 0600):
#   secret_key     server secret (TOTP seeds at rest, keyed hashes)
#   smtp_password  optional, the SMTP password
# FRISTED_DATABASE_URL overrides the database (default: fristed.db here).

# The address people use, https in production (`fristed check` insists).
public_url = "http://127.0.0.1:8080"

# Days of inactivity after which a thread expires and is purged for real.
retention_days = 30

# Days an audit entry (time, actor, action; never content) is kept before the purge deletes it.
audit_retention_days = 365

# Where the quick-exit control leaves to: a neutral, popular site.
quick_exit_url = "https://www.dr.dk/"

# Who reads the citizens' messages, named on /write and the pickup-code page.
organisation_name = "Fristed"

# When to come back, and what happens next, on /write and the pickup-code page.
# Empty = the built-in sentence in the page's language ("We answer within 24
# hours, usually sooner." / the default about telling you first and the duty
# to report). Either one text for every language, or one per language:
#   reply_promise = { da = "Vi svarer inden for 48 timer.", en = "We answer within 48 hours." }
# A language you leave out gets the built-in sentence.
reply_promise = ""
next_steps = ""
# When consultants are on duty, added to the reply promise, e.g.
#   duty_hours = { da = "Vi er her hverdage 9-21.", en = "We are here on weekdays 9-21." }
duty_hours = ""

# The time zone message times are shown in on the pages (the API stays UTC).
timezone = "Europe/Copenhagen"

[kdf]
# Argon2id cost for new pickup codes and new enrolments (mem in bytes).
ops = 3
mem = 67108864

[limits]
max_text_chars = 10000
max_envelope_bytes = 131072
# One conversation takes at most this many messages (409 thread_full) and bytes of envelopes.
max_messages_per_thread = 200
max_thread_bytes = 4194304
# New conversations per team and clock hour; beyond it citizens get 429 with Retry-After
# (never silent dropping). 0 = no cap.
max_new_threads_per_team_per_hour = 600

[pow]
# Proof of work for anonymous writes (INTERFACES.md 1.1). bits is floor_bits at a
# normal pace; when paid writes (refused attempts do not count) across all processes exceed writes_per_minute
# (over the last two windows of window_seconds) it rises to flood_bits, plus 2
# per doubling of the excess, at most max_bits, and falls back when the flood ends.
floor_bits = 0
flood_bits = 8
max_bits = 14
writes_per_minute = 300
window_seconds = 60
# How long a challenge stays good (rounded up to a whole minute).
challenge_seconds = 300
# The Argon2id cost of one try (mem in bytes, a power of two): small, so a phone
# does 256 tries (8 bits) in a second or two.
ops = 1
mem = 1048576

[rate]
# Per-client limits, in memory only, keyed by a keyed hash rotated hourly (no
# address is stored or logged). A client is the address in
# proxy.client_address_header, else the connecting socket. Each limit is a token
# bucket: *_burst at once, then *_per_minute (0 = that limit off). Behind an onion
# service (every client is the proxy) set per_client = false: proof of work
# carries the load then.
per_client = true
create_burst = 200
create_per_minute = 60
reply_burst = 300
reply_per_minute = 120
# Access tokens that match no conversation (code guessing), API and no-script alike.
failed_open_burst = 10
failed_open_per_minute = 2
# Server-side Argon2id on the no-script path (write, pick up).
noscript_burst = 30
noscript_per_minute = 10

[staff]
# A staff session ends after this many idle minutes, and at the latest after max hours.
session_idle_minutes = 30
session_max_hours = 12

[purge]
# How often a running gateway purges expired threads by itself.
interval_minutes = 60

[proxy]
# The one request header in which your reverse proxy hands over the client's
# address (e.g. "X-Real-IP"), used only to count rate limits, never stored or
# logged. Empty: trust no header (the connecting socket's address is used).
client_address_header = ""

[log]
# Citizen requests (every page, API call and file outside /staff) in the access
# log. Off: nothing about them is logged. On: one summary line per minute with
# counts per method, route and status, never a single request's time or duration.
citizen_requests = false

[help]
# What every citizen page says to do in acute danger (#emergency). Danish defaults.
emergency_number = "112"
# The police when it is not urgent; empty = not shown.
police_number = "114"
# The deployment's own helpline; both empty = none shown.
helpline_name = "Lev Uden Vold"
helpline_number = "1888"
helpline_always_open = true

[smtp]
# Content-free notifications to the consultant on duty; empty host = no e-mail.
host = ""
port = 25
sender = "fristed@localhost"
username = ""
starttls = false
tls = false
# At most one notification e-mail per consultant per this many minutes: what
# arrives meanwhile is told in the next one (0 = no pause between e-mails).
coalesce_minutes = 5
"""


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("init", parents=[common], help="create a new deployment in DIR",
                            description="Create DIR/fristed.toml, the secrets, the database and its code_salt.")
    parser.add_argument("--demo", action="store_true",
                        help="also add team 'demo' and consultant 'demo' on duty (prints passphrase and TOTP secret)")
    parser.add_argument("--port", type=int, metavar="P",
                        help="write public_url = http://127.0.0.1:P (the port `fristed serve --port P` will use), "
                        "so every printed link works on a local try-out")
    parser.set_defaults(func=run)


def write_private(path: Path, data: bytes) -> None:
    """Create a file only its owner can read, refusing to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def generate_passphrase() -> str:
    """About 100 bits, in groups a person can type: `k7qm-3xha-…`."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(20))
    return "-".join(raw[i : i + 4] for i in range(0, 20, 4))


async def run(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(getattr(args, "data_dir", None), os.environ)
    if (data_dir / CONFIG_NAME).exists():
        raise CliError(f"{data_dir} is already initialised ({CONFIG_NAME} exists)")
    port = getattr(args, "port", None)
    if port is not None and not 1 <= port <= 65535:
        raise CliError("--port must be 1-65535")
    config = CONFIG_TEMPLATE
    if port is not None:
        config = config.replace(f'public_url = "{DEFAULT_URL}"', f'public_url = "http://127.0.0.1:{port}"', 1)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    (data_dir / CONFIG_NAME).write_text(config, encoding="utf-8")
    os.chmod(data_dir / CONFIG_NAME, 0o600)
    write_private(data_dir / SECRET_NAME, nacl.utils.random(32))
    settings = load_settings(data_dir)
    db = Database.connect(settings.database_url)
    try:
        await ensure_reachable(db)
        await upgrade(db)
        async with db.write() as session:
            await set_code_salt(session, nacl.utils.random(16))
            audit.record(session, "operator", "init", "demo" if args.demo else "")
        sys.stdout.write(f"fristed: initialised {data_dir}\n")
        if args.demo:
            passphrase, totp_secret = await add_demo(db, settings)
            sys.stdout.write("demo team: demo\ndemo consultant: demo (on duty)\n")
            sys.stdout.write(f"demo passphrase: {passphrase}\n")
            sys.stdout.write(f"demo totp secret: {totp_secret}\n")
            print_totp(totp_secret)
            sys.stdout.write(f"log in at {settings.public_url}/staff/login as demo\n")
    finally:
        await db.close()
    return 0


def print_totp(secret: str) -> None:
    """The otpauth:// URI and a terminal QR code of it, for an authenticator app (no typing of base32)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name="demo", issuer_name="Fristed demo")
    sys.stdout.write(f"demo totp uri: {uri}\nscan it with an authenticator app:\n")
    segno.make(uri, error="m", micro=False).terminal(out=sys.stdout, compact=True)
    sys.stdout.flush()


async def add_demo(db: Database, settings: Settings) -> tuple[str, str]:
    """Team `demo` with consultant `demo`, enrolled as their browser would, on duty, with a first key."""
    passphrase, totp_secret = generate_passphrase(), pyotp.random_base32()
    salt = nacl.utils.random(16)
    keys = derive_staff(passphrase, salt, settings.kdf_ops, settings.kdf_mem)
    consultant_key = PrivateKey.generate()
    enrolment = Enrolment(salt, keys.auth_key, bytes(consultant_key.public_key),
                          seal_key_blob(keys.kek, bytes(consultant_key)))
    async with db.write() as session:
        await add_team(session, "demo", "Demo")
        await create_consultant(session, "demo", ["demo"], None, settings.kdf_ops, settings.kdf_mem)
        await complete_enrolment(session, settings.secret_key, "demo", enrolment, totp_secret)
        await session.flush()
        await rotate_team_key(session, "demo", "operator")
        session.add(Duty(team_id="demo", username="demo"))
        audit.record(session, "operator", "demo.add", "team=demo consultant=demo")
    return passphrase, totp_secret
