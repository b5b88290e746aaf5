"""`branchwork gc`, `du` and `pool`: disk that stays bounded, sessions that start at once."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from branchwork.cli import render
from branchwork.cli._common import JsonOpt, ProjectOpt, workspace


def gc_cmd(
    idle: Annotated[
        str, typer.Option(help="Evict worktrees of sessions idle this long (7d, 12h, 30m).")
    ] = "7d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what, change nothing.")] = False,
    project: ProjectOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Free disk: evict idle sessions' worktrees (restored on next use, nothing lost), remove
    those of archived and merged sessions and stale pooled ones, collect the index. Only in
    the data directory; never a branch."""
    with workspace() as ws:
        report = ws.gc(idle=idle, dry_run=dry_run, project=project)
    if as_json:
        render.print_json(dataclasses.asdict(report) | {"freed_bytes": report.freed_bytes})
    else:
        render.console.print(render.gc_summary(report))


def du_cmd(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """Disk used per project and session (worktrees, pool), by the index and the database."""
    with workspace() as ws:
        usage = ws.disk_usage(project)
    if as_json:
        data = dataclasses.asdict(usage)
        for entry, measured in zip(data["projects"], usage.projects, strict=True):
            entry.update(total_bytes=measured.total_bytes, over_quota=measured.over_quota)
        render.print_json(data)
    else:
        render.console.print(render.disk_table(usage))


def pool_cmd(
    project: ProjectOpt = None,
    refill: Annotated[bool, typer.Option(help="Fill it now, in this process.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The project's ready worktrees (a new session claims one instead of checking out)."""
    with workspace() as ws:
        slots = ws.refill_pool(project) if refill else ws.pool(project)
    if as_json:
        render.print_json([dataclasses.asdict(slot) for slot in slots])
        return
    for slot in slots:
        setup = f"  setup {slot.setup.status}" if slot.setup else ""
        render.console.print(f"{slot.commit[:10]}  {render.safe(slot.path)}{setup}")
    if not slots:
        render.console.print("the pool is empty")
