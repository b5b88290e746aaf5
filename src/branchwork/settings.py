"""Deployment-time settings, parsed and validated in one place.

Sources, highest priority first: keyword arguments, `BRANCHWORK_*` environment variables, the
TOML file (`BRANCHWORK_CONFIG`, else `<home>/branchwork.toml`), the defaults below.

Decision: the sources are merged here (a dozen lines) instead of with pydantic-settings, whose
import alone costs ~140 ms, more than a whole `branchwork session list` may take. pydantic
still validates and converts every value (environment strings in lax mode).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from branchwork.domain.errors import InvalidInput

ENV_PREFIX = "BRANCHWORK_"


def default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "branchwork"


def _home_from_env() -> Path:
    raw = os.environ.get("BRANCHWORK_HOME")
    return Path(raw).expanduser() if raw else default_home()


def config_file_path() -> Path:
    raw = os.environ.get("BRANCHWORK_CONFIG")
    return Path(raw).expanduser() if raw else _home_from_env() / "branchwork.toml"


class Settings(BaseModel):
    """Where Branchwork keeps its data and how it runs commands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(default_factory=default_home, description="Data directory.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data directory."
    )
    branch_prefix: str = Field(default="bw/", description="Prefix of session branch names.")
    command_timeout: float = Field(
        default=600.0,
        gt=0,
        allow_inf_nan=False,
        description="Default timeout of a command, in seconds.",
    )
    output_cap: int = Field(
        default=16_384,
        ge=256,
        description="Bytes of command output kept in events (head + tail); "
        "the full output is always kept as a blob.",
    )
    model: str | None = Field(default=None, description="Default model, `provider:name`.")
    max_steps: int = Field(default=30, ge=1, description="Most model calls in one agent turn.")
    stuck_repeats: int = Field(
        default=2,
        ge=1,
        description="A tool call repeated this many times (with the same arguments) in one "
        "turn ends it as stuck; the first repeat is answered with a note instead.",
    )
    compact_at: float = Field(
        default=0.8,
        gt=0,
        le=1,
        description="Share of the model's context budget the conversation may fill before "
        "older exchanges are summarised (compaction).",
    )
    prices_file: Path | None = Field(
        default=None, description="A TOML price table over the packaged one (USD per 1M tokens)."
    )
    sandbox: Literal["auto", "bubblewrap", "local"] = Field(
        default="auto",
        description="How commands run: `auto` (bubblewrap wherever it works, else local), "
        "`bubblewrap` (refuse to run unconfined) or `local`; a project may choose its own.",
    )
    limit_cpu_seconds: int | None = Field(
        default=3600, gt=0, description="CPU seconds a command may use (unset: no limit)."
    )
    limit_memory_mb: int | None = Field(
        default=8192, gt=0, description="Address space of a command's processes, in MiB."
    )
    limit_processes: int | None = Field(
        default=4096, gt=0, description="Processes of a command (only where it can be counted)."
    )
    limit_file_mb: int | None = Field(
        default=4096, gt=0, description="Largest file a command may write, in MiB."
    )
    pool: bool = Field(
        default=True,
        description="Keep each project's pool of ready worktrees (its `pool_size`), refilled "
        "by a background process; off: every session checks out its own worktree.",
    )
    api_file_models: bool = Field(
        default=False,
        description="Let API callers choose a model that reads a file on the server "
        "(`scripted:PATH`, `local:/path/to.gguf`); off, only named models (for tests).",
    )
    port_base: int = Field(default=20_000, ge=1024, le=65_000, description="First session port.")
    port_block: int = Field(default=10, ge=1, le=100, description="Ports given to each session.")

    @field_validator("home", mode="after")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("branch_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        if not value or value.startswith(("/", "-")) or " " in value or ".." in value:
            raise ValueError("must be a git ref fragment such as 'bw/'")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'branchwork.db'}"

    def public_dict(self) -> dict[str, Any]:
        """The settings as shown by `branchwork config` (passwords in URLs masked)."""
        data = self.model_dump(mode="json")
        data["database_url"] = _mask_url_password(self.resolved_database_url)
        data["config_file"] = str(config_file_path())
        return data


def _mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def _from_environment() -> dict[str, str]:
    known = Settings.model_fields
    values = {}
    for key, value in os.environ.items():
        name = key[len(ENV_PREFIX) :].lower()
        if key.startswith(ENV_PREFIX) and name in known:
            values[name] = value
    return values


def _from_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise InvalidInput(f"{path} is not valid TOML ({exc}); fix or remove it") from exc


def load_settings(**overrides: Any) -> Settings:
    """Load and validate the settings; a bad value raises InvalidInput naming the variable."""
    path = config_file_path()
    merged = {**_from_file(path), **_from_environment(), **overrides}
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"BRANCHWORK_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidInput(
            f"invalid configuration: {problems}. Fix the environment variable or {path} and retry"
        ) from exc
