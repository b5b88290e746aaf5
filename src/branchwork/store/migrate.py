"""Bring a database to the newest schema with the packaged Alembic revisions.

`HEAD_REVISION` names the newest revision so that an up-to-date database is recognised with one
query, without importing Alembic (a test checks it against the scripts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

HEAD_REVISION = "0002_lease_cancel"
_SCRIPT_LOCATION = "branchwork.store:migrations"


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _SCRIPT_LOCATION)
    return config


def script_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Apply every migration not yet applied; one query when the schema is current."""
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command

    config = _config()
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        conn.commit()
