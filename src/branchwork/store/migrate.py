"""Bring a database to the newest schema with the packaged Alembic revisions.

`HEAD_REVISION` names the newest revision, so that an up-to-date database is recognised with one
query (`Executor.revision`) without importing Alembic or SQLAlchemy; a test checks the constant
against the scripts. Only `upgrade` imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from branchwork._lazy import lazy_module
from branchwork.domain.errors import StoreError
from branchwork.store.errors import mask_password

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine

    from branchwork.store import alchemy, engine as store_engine
else:  # SQLAlchemy is imported only to migrate
    alchemy = lazy_module("branchwork.store.alchemy")
    store_engine = lazy_module("branchwork.store.engine")

HEAD_REVISION = "0006_users"
_SCRIPT_LOCATION = "branchwork.store:migrations"


def config() -> Config:
    from alembic.config import Config

    result = Config()
    result.set_main_option("script_location", _SCRIPT_LOCATION)
    return result


def script_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def upgrade(url: str, target: str = "head") -> None:
    """Apply every migration up to `target` that is not applied yet, in one write transaction.

    On SQLite the transaction takes the write lock before Alembic reads the stored revision, so
    processes opening a new database at once migrate it once, one after the other.

    A driver error (a read-only data directory, a full disk …) becomes the same one-line
    `StoreError` as on the store's own paths; the failed migration leaves the database as it was.
    """
    from alembic import command
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    engine = store_engine.make_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**{store_engine.WRITE: True})
            with conn.begin():
                settings = config()
                settings.attributes["connection"] = conn
                command.upgrade(settings, target)
    except CommandError as exc:
        raise StoreError(
            f"the database at {mask_password(url)} cannot be migrated: {exc}. It was probably "
            "written by a newer Branchwork; upgrade Branchwork, or point BRANCHWORK_DATABASE_URL "
            "elsewhere"
        ) from exc
    except DBAPIError as exc:
        error = alchemy.translate(exc, "migrated", url, store_engine.sqlite_file(url))
        if error is None:
            raise
        raise error from exc
    finally:
        engine.dispose()
