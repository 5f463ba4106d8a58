"""`fristed keys rotate (--team ID | --all)` · `fristed keys list` (CRYPTO.md "Rotation and shredding").

A rotation makes the new team secret key in this process's memory only, seals
it to every active member's public key and forgets it; the old key is retired
and stays readable through the grants members already hold.
"""

import argparse
import sys

from sqlalchemy import func, select

from gateway.db import rfc3339_minute
from gateway.models import EnvelopeKid, Grant, Team, TeamKey
from gateway.services.keys import active_members, rotate_team_key
from gateway.services.teams import get_team
from ops.common import CliError, open_database, print_json, print_table, settings_from


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("keys", parents=[common], help="rotate and list team keys",
                            description="Team keys: the server stores only their public halves and grants.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    rotate = actions.add_parser(
        "rotate", parents=[common], help="give a team (or every team) a new key",
        description="Make a new key for the team, sealed to every enrolled member; the old key is retired "
        "(threads sealed to it stay readable) and shredded by the purge once no stored message uses it.")
    which = rotate.add_mutually_exclusive_group(required=True)
    which.add_argument("--team", metavar="ID", help="the team to rotate")
    which.add_argument("--all", action="store_true", help="every team with an enrolled member")
    rotate.set_defaults(func=run_rotate)
    listing = actions.add_parser("list", parents=[common], help="list team keys",
                                 description="Every stored team key: current or retired, grants, threads using it.")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(func=run_list)


async def run_rotate(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    lines = []
    async with open_database(settings) as db, db.write() as session:
        if args.team:
            await get_team(session, args.team)
            team_ids = [args.team]
        else:
            team_ids = list(await session.scalars(select(Team.id).order_by(Team.id)))
        for team_id in team_ids:
            members = [m for m in await active_members(session, team_id) if m.pk is not None]
            if not members:
                if args.team:
                    raise CliError(f"team {team_id} has no enrolled member to hold its key: invite one, "
                                   "let them enrol, then rotate")
                lines.append(f"team {team_id}: skipped, no enrolled member")
                continue
            old = await session.scalar(select(TeamKey.kid).where(TeamKey.team_id == team_id, TeamKey.current.is_(True)))
            new_kid = await rotate_team_key(session, team_id, "operator")
            retired = f", retired {old}" if old else ""
            lines.append(f"team {team_id}: new key {new_kid} sealed to {len(members)} member(s){retired}")
    if not lines:
        raise CliError("there are no teams: add one with `fristed team add`")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


async def run_list(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    async with open_database(settings) as db, db.read() as session:
        keys = (await session.scalars(select(TeamKey).order_by(TeamKey.team_id, TeamKey.created))).all()
        grants = dict((await session.execute(select(Grant.kid, func.count()).group_by(Grant.kid))).all())
        threads = dict((await session.execute(select(EnvelopeKid.kid, func.count()).group_by(EnvelopeKid.kid))).all())
    rows = [
        {"team": k.team_id, "kid": k.kid, "state": "current" if k.current else "retired",
         "created": rfc3339_minute(k.created), "retired": rfc3339_minute(k.retired) if k.retired else None,
         "grants": grants.get(k.kid, 0), "threads": threads.get(k.kid, 0)}
        for k in keys
    ]
    if args.json:
        print_json(rows)
    else:
        print_table(("TEAM", "KID", "STATE", "CREATED", "RETIRED", "GRANTS", "THREADS"),
                    [(r["team"], r["kid"], r["state"], r["created"], r["retired"] or "-", r["grants"], r["threads"])
                     for r in rows])
    return 0
