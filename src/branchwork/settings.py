"""Deployment-time settings, parsed and validated in one place.

Sources, highest priority first: keyword arguments, `BRANCHWORK_*` environment variables, the
TOML file (`BRANCHWORK_CONFIG`, else `<home>/branchwork.toml`), the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from branchwork.domain.errors import InvalidInput


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


class Settings(BaseSettings):
    """Where Branchwork keeps its data and how it runs commands."""

    model_config = SettingsConfigDict(env_prefix="BRANCHWORK_", extra="forbid", frozen=True)

    home: Path = Field(default_factory=default_home, description="Data directory.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data directory."
    )
    branch_prefix: str = Field(default="bw/", description="Prefix of session branch names.")
    command_timeout: float = Field(
        default=600.0, gt=0, description="Default timeout of a command, in seconds."
    )
    output_cap: int = Field(
        default=16_384,
        ge=256,
        description="Bytes of command output kept in events (head + tail); "
        "the full output is always kept as a blob.",
    )
    model: str | None = Field(default=None, description="Default model, `provider:name`.")
    sandbox: Literal["local", "bubblewrap"] = Field(
        default="local", description="How commands are run."
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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file_path())
        return (init_settings, env_settings, toml)

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
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as given
        return url


def load_settings(**overrides: Any) -> Settings:
    """Load and validate the settings; a bad value raises InvalidInput naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"BRANCHWORK_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidInput(
            f"invalid configuration: {problems}. Fix the environment variable or "
            f"{config_file_path()} and retry"
        ) from exc
