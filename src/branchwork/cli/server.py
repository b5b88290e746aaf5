"""`branchwork serve`, `branchwork user …` and `branchwork export`: the server, its users and
their tokens, and a session's history as a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

import branchwork as bw
from branchwork._lazy import lazy_module
from branchwork.cli import render
from branchwork.cli._common import JsonOpt, ProjectOpt, workspace

if TYPE_CHECKING:
    from branchwork import api
else:  # FastAPI and uvicorn load only for `serve`
    api = lazy_module("branchwork.api")

user_app = typer.Typer(
    rich_markup_mode="markdown",
    help="People who may use the server, their roles per project and their tokens.",
    no_args_is_help=True,
)
RoleOpt = Annotated[str, typer.Option("--role", "-r", help="viewer | member | maintainer | admin")]


def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every one).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8765,
    local: Annotated[
        bool,
        typer.Option("--local", help="A single local admin: print a one-time login link."),
    ] = False,
    rate: Annotated[
        float, typer.Option(min=0, help="Requests a second per token (0: no limit).")
    ] = 50.0,
    webhook: Annotated[
        str | None,
        typer.Option(help="URL POSTed to when a turn ends, needs approval, or a check fails."),
    ] = None,
) -> None:
    """Serve the HTTP API, its streams and the web UI (until Ctrl-C). Every call needs a
    token: `user add` prints one; `--local` prints a login link for the browser."""
    api.serve(host=host, port=port, local=local, rate=rate, webhook=webhook, announce=_announce)


def _announce(text: str) -> None:
    render.console.print(escape(text), soft_wrap=True)
    sys.stdout.flush()


def _token_json(issued: bw.IssuedToken) -> dict[str, object]:
    expires = issued.expires_at.isoformat() if issued.expires_at else None
    return {"id": issued.id, "kind": issued.kind, "token": issued.secret, "expires_at": expires}


@user_app.command("add")
def user_add_cmd(
    name: str,
    role: RoleOpt = "member",
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a user with a role in one project (`--project`) or in every project, and print
    their token (shown once: only its hash is kept)."""
    with workspace() as ws:
        user, issued = ws.add_user(name, role=role, project=project)
    if as_json:
        render.print_json(
            {"id": user.id, "name": user.name, "grants": user.grants, "token": issued.secret}
        )
        return
    where = f"project {project}" if project else "every project"
    render.console.print(f"user [bold]{escape(user.name)}[/] is {role} in {escape(where)}")
    print(issued.secret)


@user_app.command("list")
def user_list_cmd(as_json: JsonOpt = False) -> None:
    """The users and their roles (`*`: every project)."""
    with workspace() as ws:
        found = ws.users()
        names = {p.id: p.name for p in ws.projects()}
    if as_json:
        render.print_json([u.model_dump(mode="json") for u in found])
        return
    for user in found:
        roles = ", ".join(f"{names.get(k, k)}: {r}" for k, r in sorted(user.grants.items()))
        render.console.print(f"[bold]{escape(user.name)}[/]  {escape(roles or 'no role')}")


@user_app.command("grant")
def user_grant_cmd(
    name: str,
    role: Annotated[
        str | None, typer.Option("--role", "-r", help="The role; leave out with --remove.")
    ] = None,
    project: ProjectOpt = None,
    remove: Annotated[bool, typer.Option(help="Take the role in the project away.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Give a user a role in a project (or in every project), or take it away."""
    if role is None and not remove:
        raise bw.InvalidInput("give --role ROLE, or --remove to take the user's role away")
    with workspace() as ws:
        user = ws.grant(name, role=None if remove else role, project=project)
    if as_json:
        render.print_json(user.model_dump(mode="json"))
    else:
        render.console.print(f"[bold]{escape(user.name)}[/]: {escape(str(user.grants))}")


@user_app.command("token")
def user_token_cmd(name: str, as_json: JsonOpt = False) -> None:
    """Print a new token for the user (their other tokens keep working)."""
    with workspace() as ws:
        issued = ws.new_token(name)
    if as_json:
        render.print_json(_token_json(issued))
    else:
        print(issued.secret)


@user_app.command("revoke")
def user_revoke_cmd(name: str, as_json: JsonOpt = False) -> None:
    """Revoke every token of the user (API tokens, browser logins, share links)."""
    with workspace() as ws:
        count = ws.revoke_tokens(name)
    if as_json:
        render.print_json({"name": name, "revoked": count})
    else:
        render.console.print(f"revoked {count} token(s) of {escape(name)}")


@user_app.command("login")
def user_login_cmd(
    name: str,
    url: Annotated[str, typer.Option(help="The server's address.")] = "http://127.0.0.1:8765",
    as_json: JsonOpt = False,
) -> None:
    """Print a one-time login link for the user's browser (15 minutes)."""
    with workspace() as ws:
        issued = ws.login_token(name)
    link = f"{url.rstrip('/')}/login#{issued.secret}"
    if as_json:
        render.print_json({**_token_json(issued), "url": link})
    else:
        print(link)


def export_cmd(
    session: Annotated[
        str | None, typer.Argument(help="Session (default: the current dir's).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl | html")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Write a session's whole history as JSON lines or one self-contained HTML page."""
    with workspace() as ws:
        pieces = ws.export(session, fmt=fmt)
        if output is None:
            for piece in pieces:
                sys.stdout.write(piece)
            sys.stdout.flush()
            return
        with output.open("w", encoding="utf-8") as file:
            for piece in pieces:
                file.write(piece)
    render.err_console.print(f"wrote {escape(str(output))}")
