"""Pure data: projects, their configuration, sessions and checkpoints."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from branchwork.domain.ids import short_id
from branchwork.domain.proposals import ApprovalPolicy

ActionMode = Literal["ask", "auto-edit", "autopilot"]
SessionStatus = Literal["active", "archived", "merged"]

# A guard-rail for autopilot, not a sandbox: a determined command can always be spelled another
# way (use the bubblewrap runner to confine commands).
DEFAULT_DANGEROUS_PATTERNS: tuple[str, ...] = (
    r"\bgit\b(?![^;&|\n]*\sstash\s)[^;&|\n]*\spush\b",
    r"\bgit\b[^;&|\n]*\sreset\s+--hard\b",
    r"\bgit\b[^;&|\n]*\sclean\s+-[a-zA-Z]*f",
    r"\bgit\b[^;&|\n]*\s(filter-branch|filter-repo|update-ref)\b",
    r"\bpush\s+(--force|-f|origin|upstream)\b",
    r"\brm\s+(-[a-zA-Z]+\s+)*(/|~|\$HOME)(\s|/?\*?$|/\s)",
    r"\bsudo\b",
    r"\b(curl|wget)\b[^|]*\|\s*(ba|z)?sh\b",
    r"\bmkfs\b",
    r"\bdd\b[^;&|]*\bof=/dev/",
    r"\bchmod\s+(-[a-zA-Z]+\s+)*[0-7]*777\s+/",
)


class ProjectConfig(BaseModel):
    """Per-project settings, seedable from a `.branchwork.toml` committed in the repository."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    copy_files: list[str] = Field(
        default_factory=list,
        description="Untracked files (glob patterns) copied from the user's checkout "
        "into each new worktree, such as `.env`.",
    )
    setup: str | None = Field(default=None, description="A shell command run in each new worktree.")
    mode: ActionMode = Field(default="auto-edit", description="Default action policy.")
    model: str | None = Field(default=None, description="Default model, `provider:name`.")
    sandbox: Literal["auto", "bubblewrap", "local"] | None = Field(
        default=None,
        description="How this project's commands run; unset: the deployment setting.",
    )
    network: Literal["on", "off"] = Field(
        default="on", description="Whether commands may reach the network (off: bubblewrap)."
    )
    budget_tokens: int | None = Field(
        default=None, gt=0, description="Tokens all the project's sessions may use together."
    )
    budget_cost_usd: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Dollars they may spend together."
    )
    budget_seconds: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Seconds of turns, together."
    )
    concurrent_turns: int = Field(
        default=2,
        ge=1,
        le=64,
        description="How many trials may run agent turns at once; the others wait, queued.",
    )
    pool_size: int = Field(
        default=2,
        ge=0,
        le=16,
        description="Worktrees kept ready at the tip of main, so that a new session starts "
        "with a branch switch instead of a checkout (0: none).",
    )
    pool_setup: bool = Field(
        default=False,
        description="Run the setup command in pooled worktrees ahead of time (only when it "
        "does not depend on the session: no session id, no port).",
    )
    disk_quota_mb: int | None = Field(
        default=None,
        gt=0,
        description="Disk the project's worktrees may use (sessions and pool) before a warning.",
    )
    dangerous_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DANGEROUS_PATTERNS),
        description="Regular expressions of commands that always ask, even in autopilot.",
    )
    policy: ApprovalPolicy = Field(
        default_factory=ApprovalPolicy,
        description="The approval policy of proposals (`[policy]` in .branchwork.toml).",
    )

    @field_validator("copy_files")
    @classmethod
    def _relative_globs(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            parts = pattern.replace("\\", "/").split("/")
            if not pattern or pattern.startswith("/") or ".." in parts or ".git" in parts:
                raise ValueError(
                    f"copy pattern {pattern!r} must be a relative glob inside the repository "
                    "(no leading /, no .., not .git), such as '.env' or 'config/*.local'"
                )
        return patterns

    @field_validator("dangerous_patterns")
    @classmethod
    def _valid_regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"dangerous pattern {pattern!r} is not a regex: {exc}") from exc
        return patterns


class Project(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    path: str
    origin: str | None = None
    main_branch: str
    created_at: datetime
    config: ProjectConfig = Field(default_factory=ProjectConfig)
    env: dict[str, str] = Field(default_factory=dict)
    secret_names: list[str] = Field(default_factory=list)


class Session(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    project_id: str
    title: str
    branch: str
    base_commit: str
    worktree: str
    status: SessionStatus
    created_at: datetime
    last_activity: datetime
    port: int
    mode: ActionMode | None = None
    model: str | None = None
    parent_id: str | None = Field(default=None, description="The session this one forks.")
    parent_seq: int | None = Field(default=None, description="The parent's last shared event.")

    @property
    def short_id(self) -> str:
        return short_id(self.id)

    @property
    def parent_short_id(self) -> str | None:
        return short_id(self.parent_id) if self.parent_id else None


class CheckpointInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    commit: str
    message: str
    files: list[str]
    seq: int
