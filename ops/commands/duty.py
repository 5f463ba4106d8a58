"""`fristed duty set --team ID USER` · `fristed duty show`: the on-duty consultant per team.

New threads of a team go to whoever is on duty (several may be, when
consultants switch themselves on in the inbox); with nobody on duty every
member is notified (INTERFACES.md "Notifications").
"""

import argparse
import sys

from sqlalchemy import delete, select

from gateway.models import Consultant, Duty, Membership, Team
from gateway.services import audit
from gateway.services.teams import get_team
from ops.common import CliError, open_database, print_json, print_table, settings_from


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("duty", parents=[common], help="set and show who is on duty",
                            description="The on-duty consultant of a team is assigned its new threads.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    actions.required = True
    setter = actions.add_parser(
        "set", parents=[common], help="put a consultant on duty for a team",
        description="Make USER the one consultant on duty for team ID (whoever else was on duty for it goes off). "
        "USER must be an enrolled member of the team. --nobody takes everyone off duty.")
    setter.add_argument("--team", required=True, metavar="ID")
    who = setter.add_mutually_exclusive_group(required=True)
    who.add_argument("username", nargs="?", metavar="USER")
    who.add_argument("--nobody", action="store_true", help="nobody on duty: every member is notified")
    setter.set_defaults(func=run_set)
    show = actions.add_parser("show", parents=[common], help="show who is on duty per team")
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
    show.set_defaults(func=run_show)


async def run_set(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    async with open_database(settings) as db, db.write() as session:
        await get_team(session, args.team)
        if args.username is not None:
            consultant = await session.get(Consultant, args.username)
            member = await session.get(Membership, (args.username, args.team))
            if consultant is None or member is None:
                raise CliError(f"{args.username} is not a member of team {args.team}")
            if consultant.status != "active":
                raise CliError(f"{args.username} has not enrolled yet (status {consultant.status})")
        await session.execute(delete(Duty).where(Duty.team_id == args.team))
        if args.username is not None:
            session.add(Duty(team_id=args.team, username=args.username))
        audit.record(session, "operator", "duty.set", f"team={args.team} username={args.username or '-'}")
    if args.username:
        sys.stdout.write(f"{args.username} is on duty for team {args.team}\n")
    else:
        sys.stdout.write(f"nobody is on duty for team {args.team}: every member is notified\n")
    return 0


async def run_show(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    async with open_database(settings) as db, db.read() as session:
        teams = (await session.scalars(select(Team.id).order_by(Team.id))).all()
        duty: dict[str, list[str]] = {}
        rows = await session.execute(select(Duty.team_id, Duty.username).order_by(Duty.username))
        for team_id, username in rows.all():
            duty.setdefault(team_id, []).append(username)
    data = [{"team": team_id, "on_duty": duty.get(team_id, [])} for team_id in teams]
    if args.json:
        print_json(data)
    else:
        print_table(("TEAM", "ON DUTY"), [(d["team"], ", ".join(d["on_duty"]) or "(nobody: all members notified)")
                                          for d in data])
    return 0
