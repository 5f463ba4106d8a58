"""`fristed consultant invite|list|remove`: who may read a team's threads."""

import argparse
import sys

from crypto import kid
from gateway.db import rfc3339_minute
from gateway.models import Invite
from gateway.services import audit
from gateway.services.consultants import (
    create_invite,
    invite_token_hash,
    list_consultants,
    remove_consultant,
)
from ops.common import CliError, open_database, print_json, print_table, settings_from


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("consultant", parents=[common], help="invite, list and remove consultants",
                            description="Consultants read and answer their teams' threads in the staff inbox.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True

    invite = actions.add_parser(
        "invite", parents=[common], help="invite a consultant: prints a one-time enrolment URL",
        description="Create consultant USER and print a one-time enrolment URL (valid 72 hours) as the last "
        "line of output. Give it to USER only, over a channel you trust: whoever opens it first chooses the "
        "passphrase. The token is in the URL fragment, so it never reaches a server log.")
    invite.add_argument("username", metavar="USER", help="lowercase letters, digits, '-' and '_'")
    invite.add_argument("--team", dest="teams", action="append", required=True, metavar="ID",
                        help="a team USER joins (repeat for several)")
    invite.add_argument("--email", metavar="ADDR",
                        help="where content-free 'something waits in your inbox' notifications go")
    invite.add_argument("--json", action="store_true", help="print JSON for scripts")
    invite.set_defaults(func=run_invite)

    listing = actions.add_parser("list", parents=[common], help="list consultants",
                                 description="Every consultant: status, teams and key fingerprint (kid).")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(func=run_list)

    remove = actions.add_parser(
        "remove", parents=[common], help="remove a consultant and rotate their teams' keys",
        description="Delete USER's key material, grants, sessions, duty and memberships, and rotate the key of "
        "every team they were in (old threads stay readable by the remaining members).")
    remove.add_argument("username", metavar="USER")
    remove.set_defaults(func=run_remove)


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in value) or len(value) > 320:
        raise CliError(f"--email {value!r} is not an e-mail address")
    return value


async def run_invite(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    email = _email(args.email)
    async with open_database(settings) as db, db.write() as session:
        token = await create_invite(session, args.username, args.teams, email, settings.kdf_ops, settings.kdf_mem)
        invite = await session.get(Invite, invite_token_hash(token))
        assert invite is not None
        expires = invite.expires
        teams = sorted(set(args.teams))
        audit.record(session, "operator", "consultant.invite", f"username={args.username} teams={','.join(teams)}")
    url = f"{settings.public_url}/staff/enroll#{token}"
    if args.json:
        print_json({"username": args.username, "teams": teams, "expires": rfc3339_minute(expires), "url": url})
        return 0
    sys.stdout.write(
        f"invited consultant {args.username} (teams: {', '.join(teams)})\n"
        f"the enrolment URL works once, until {rfc3339_minute(expires)}; give it to {args.username} only:\n"
        f"{url}\n"
    )
    return 0


async def run_list(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    async with open_database(settings) as db, db.read() as session:
        consultants = await list_consultants(session)
    rows = [
        {"username": c.username, "status": c.status, "teams": teams, "email": c.email,
         "kid": kid(c.pk) if c.pk else None, "created": rfc3339_minute(c.created)}
        for c, teams in consultants
    ]
    if args.json:
        print_json(rows)
    else:
        print_table(("USER", "STATUS", "TEAMS", "KEY (KID)", "E-MAIL", "CREATED"),
                    [(c.username, c.status, ",".join(teams) or "-", kid(c.pk) if c.pk else "-", c.email or "-",
                      rfc3339_minute(c.created)) for c, teams in consultants])
    return 0


async def run_remove(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    async with open_database(settings) as db, db.write() as session:
        removal = await remove_consultant(session, args.username, "operator")
    out = [f"removed consultant {removal.username}: key material, grants, sessions and duty deleted"]
    for team_id, new_kid in removal.rotated.items():
        out.append(f"team {team_id}: rotated, new key {new_kid}")
    for team_id, old_kid in removal.retired.items():
        out.append(f"team {team_id}: no enrolled member left; key {old_kid} retired without a successor, so the "
                   f"team takes no new threads until a new member enrols and `fristed keys rotate --team {team_id}` runs")
    sys.stdout.write("\n".join(out) + "\n")
    return 0
