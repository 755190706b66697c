"""The hub's command: start it, publish a snapshot, manage its users.

    python -m ml.hub serve                                  # http://127.0.0.1:8080 by default
    python -m ml.hub publish                                # a snapshot of the warehouse now
    python -m ml.hub users add NAME --role marketer|analyst|privacy
    python -m ml.hub users list
    python -m ml.hub users set-role NAME --role analyst
    python -m ml.hub users set-password NAME
    python -m ml.hub users unlock NAME                      # after five failed sign-ins
    python -m ml.hub users remove NAME

Passwords are asked for twice without echo; `--password-stdin` reads one line from standard
input instead (for scripts). Settings come from the environment (ml/settings.py): make sets
them, see docs/hub.md.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence

from ml.hub.roles import ROLE_DESCRIPTIONS, ROLES
from ml.settings import Settings, SettingsError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.hub", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="start the hub (TEAL_HUB_HOST, TEAL_HUB_PORT)")
    commands.add_parser("publish", help="publish a snapshot of the warehouse for the hub now")
    users = commands.add_parser("users", help="manage who may sign in").add_subparsers(
        dest="action", required=True
    )
    roles = ", ".join(f"{role}: {words}" for role, words in ROLE_DESCRIPTIONS.items())
    add = users.add_parser("add", help="add a user", description=f"Roles: {roles}.")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    users.add_parser("list", help="list users and their roles")
    set_role = users.add_parser("set-role", help="change a user's role")
    set_role.add_argument("name")
    set_role.add_argument("--role", required=True, choices=ROLES)
    set_password = users.add_parser("set-password", help="set a new password (ends sessions)")
    set_password.add_argument("name")
    set_password.add_argument("--password-stdin", action="store_true")
    for action, words in (("unlock", "forget failed sign-ins"), ("remove", "remove a user")):
        users.add_parser(action, help=words).add_argument("name")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.command == "serve":
            return _serve(settings)
        if args.command == "publish":
            return _publish(settings)
        return _users(settings, args)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2


def _users(settings: Settings, args: argparse.Namespace) -> int:
    from ml.hub.store import HubStore, UserError

    store = HubStore(settings.hub_database)
    actor = f"command line ({_login()})"
    try:
        if args.action == "add":
            password = _password(args.password_stdin)
            user = store.add_user(args.name, args.role, password, actor)
            print(f"added {user.username} ({user.role}); they sign in at {_address(settings)}")
        elif args.action == "list":
            found = store.users()
            if not found:
                print("no users yet: add one with `python -m ml.hub users add NAME --role ROLE`")
            for user in found:
                print(f"{user.username:<24} {user.role:<10} added {user.created_at} UTC")
        elif args.action == "set-role":
            store.set_role(args.name, args.role, actor)
            print(f"{args.name} is now {args.role}")
        elif args.action == "set-password":
            store.set_password(args.name, _password(args.password_stdin), actor)
            print(f"new password set for {args.name}; their open sessions ended")
        elif args.action == "unlock":
            had = store.unlock(args.name, actor)
            print(f"{args.name} unlocked" if had else f"{args.name} had no failed sign-ins")
        elif args.action == "remove":
            store.remove_user(args.name, actor)
            print(f"removed {args.name}; their open sessions ended")
    except UserError as error:
        print(f"Nothing changed: {error}", file=sys.stderr)
        return 1
    return 0


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password (12 characters or more): ")
    if getpass.getpass("Same password again: ") != first:
        from ml.hub.store import UserError

        raise UserError("the two passwords differ")
    return first


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _address(settings: Settings) -> str:
    host = "localhost" if settings.hub_host in ("127.0.0.1", "0.0.0.0", "::") else settings.hub_host
    return f"http{'s' if settings.hub_https else ''}://{host}:{settings.hub_port}"


def _serve(settings: Settings) -> int:
    import uvicorn

    from ml.hub.app import create_app
    from ml.hub.reader import current_snapshot
    from ml.hub.store import HubStore
    from ml.hub.web import HubConfigError

    try:
        app = create_app(settings)
    except HubConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if not HubStore(settings.hub_database).users():
        print(
            "No users yet: add one with `.venv/bin/python -m ml.hub users add NAME --role "
            "marketer` (or analyst, privacy), then sign in."
        )
    if current_snapshot(settings.hub_snapshots) is None:
        print(
            f"No snapshot in {settings.hub_snapshots} yet: run the pipeline (`make run`), or "
            "publish one from an existing warehouse with `python -m ml.hub publish`."
        )
    print(f"The audience hub: {_address(settings)}")
    uvicorn.run(
        app,
        host=settings.hub_host,
        port=settings.hub_port,
        server_header=False,
        proxy_headers=False,
        log_level="info",
    )
    return 0


def _publish(settings: Settings) -> int:
    from ml.hub.snapshot import SnapshotError, publish_snapshot
    from ml.runlock import RunInProgress, warehouse_lock

    try:
        with warehouse_lock(settings.warehouse, "hub-publish"):
            published = publish_snapshot(settings, as_of=settings.as_of)
    except RunInProgress as busy:
        print(f"Not published: {busy}", file=sys.stderr)
        return 75
    except SnapshotError as error:
        print(f"Not published: {error}", file=sys.stderr)
        return 1
    rows = ", ".join(f"{name} {count:,}" for name, count in published.tables.items())
    print(f"published {published.folder} ({published.export_files} export files; {rows})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
