"""`fristed team add ID --name NAME` · `fristed team list`: teams (e.g. regions)."""

import argparse
import sys

from sqlalchemy import func, select

from gateway.models import Consultant, Duty, Membership, Team, TeamKey
from gateway.services import audit
from gateway.services.teams import add_team
from ops.common import open_database, print_json, print_table, settings_from


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("team", parents=[common], help="add and list teams",
                            description="Teams receive threads; each has its own key (see `fristed keys`).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    add = actions.add_parser("add", parents=[common], help="add a team",
                             description="Add a team. It is offered to citizens once it has a key: invite a "
                             "consultant, let them enrol, then run `fristed keys rotate --team ID`.")
    add.add_argument("id", metavar="ID", help="lowercase letters, digits, '-' and '_' (e.g. aarhus)")
    add.add_argument("--name", required=True, help="the name citizens see (e.g. 'Team Aarhus')")
    add.set_defaults(func=run_add)
    listing = actions.add_parser("list", parents=[common], help="list teams",
                                 description="Every team with its members, current key and who is on duty.")
    listing.add_argument("--json", action="store_true", help="print JSON for scripts")
    listing.set_defaults(func=run_list)


async def run_add(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    async with open_database(settings) as db, db.write() as session:
        team = await add_team(session, args.id, args.name)
        audit.record(session, "operator", "team.add", f"team={team.id}")
    sys.stdout.write(f"added team {team.id} ({team.name}); it takes threads once it has a key: "
                     f"invite a consultant, then `fristed keys rotate --team {team.id}` after they enrol\n")
    return 0


async def run_list(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    async with open_database(settings) as db, db.read() as session:
        teams = (await session.scalars(select(Team).order_by(Team.id))).all()
        members = dict(
            (
                await session.execute(
                    select(Membership.team_id, func.count())
                    .join(Consultant, Consultant.username == Membership.username)
                    .where(Consultant.status == "active")
                    .group_by(Membership.team_id)
                )
            ).all()
        )
        current = dict((await session.execute(select(TeamKey.team_id, TeamKey.kid).where(TeamKey.current.is_(True)))).all())
        duty: dict[str, list[str]] = {}
        for team_id, username in (await session.execute(select(Duty.team_id, Duty.username).order_by(Duty.username))).all():
            duty.setdefault(team_id, []).append(username)
    rows = [
        {"id": t.id, "name": t.name, "active_members": members.get(t.id, 0), "current_kid": current.get(t.id),
         "on_duty": duty.get(t.id, []), "offered": t.id in current}
        for t in teams
    ]
    if args.json:
        print_json(rows)
    else:
        print_table(("ID", "NAME", "MEMBERS", "CURRENT KEY", "ON DUTY"),
                    [(t.id, t.name, members.get(t.id, 0), current.get(t.id) or "(none: not offered)",
                      ", ".join(duty.get(t.id, [])) or "-") for t in teams])
    return 0
