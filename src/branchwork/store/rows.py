"""Rows to values and back: datetime codecs per dialect, domain models, JSON-ready event dicts.

On SQLite a datetime is stored as naive UTC text `YYYY-MM-DD HH:MM:SS.ffffff` (the format the
databases written through SQLAlchemy already hold, so it also sorts and compares as text); on
other databases it is a native `timestamp with time zone`. Either way a value read back is a
timezone-aware UTC `datetime`. sqlite3's own datetime adapters are never used.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol, get_args

from pydantic_core import from_json, to_jsonable_python

from branchwork.domain.errors import StoreError
from branchwork.domain.events import (
    SCHEMA_VERSION,
    SCHEMA_VERSIONS,
    Event,
    Payload,
    parse_event,
)
from branchwork.domain.models import Project, ProjectConfig, Session
from branchwork.store.sql import LEASE_COLUMNS, SESSION_COLUMNS

Row = tuple[Any, ...]


class Codec(Protocol):
    """How one dialect stores datetimes."""

    def param(self, value: datetime) -> Any: ...
    def value(self, raw: Any) -> datetime: ...
    def json(self, raw: Any) -> str: ...


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso_z(value: datetime) -> str:
    """Pydantic's JSON form of a UTC datetime: microseconds only when not zero, then `Z`."""
    return _utc(value).replace(tzinfo=None).isoformat() + "Z"


class SqliteCodec:
    """Naive UTC text with microseconds, as SQLAlchemy's SQLite `DateTime` writes it."""

    def param(self, value: datetime) -> str:
        return _utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")

    def value(self, raw: Any) -> datetime:
        return _utc(raw if isinstance(raw, datetime) else datetime.fromisoformat(raw))

    def json(self, raw: Any) -> str:
        if type(raw) is str and len(raw) == 26 and raw[10] == " ":  # the format we write
            if raw.endswith(".000000"):
                return f"{raw[:10]}T{raw[11:19]}Z"
            return f"{raw[:10]}T{raw[11:]}Z"
        return _iso_z(self.value(raw))


class NativeCodec:
    """Drivers that bind and return timezone-aware datetimes themselves (PostgreSQL)."""

    def param(self, value: datetime) -> datetime:
        return _utc(value)

    def value(self, raw: Any) -> datetime:
        return _utc(raw if isinstance(raw, datetime) else datetime.fromisoformat(raw))

    def json(self, raw: Any) -> str:
        return _iso_z(self.value(raw))


def codec_for(dialect: str) -> Codec:
    return SqliteCodec() if dialect == "sqlite" else NativeCodec()


# -- projects and sessions ---------------------------------------------------------------------


def project_params(project: Project, codec: Codec) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "path": project.path,
        "origin": project.origin,
        "main_branch": project.main_branch,
        "created_at": codec.param(project.created_at),
        "config": project.config.model_dump_json(),
        "env": json.dumps(project.env),
        "secret_names": json.dumps(project.secret_names),
    }


def project_from_row(row: Row, codec: Codec) -> Project:
    id_, name, path, origin, main_branch, created_at, config, env, secret_names = row
    return Project(
        id=id_,
        name=name,
        path=path,
        origin=origin,
        main_branch=main_branch,
        created_at=codec.value(created_at),
        config=ProjectConfig.model_validate_json(config),
        env=json.loads(env),
        secret_names=json.loads(secret_names),
    )


def session_params(session: Session, codec: Codec) -> dict[str, Any]:
    data = session.model_dump()
    data["created_at"] = codec.param(session.created_at)
    data["last_activity"] = codec.param(session.last_activity)
    return data


def session_from_row(row: Row, codec: Codec) -> Session:
    data = dict(zip(SESSION_COLUMNS, row, strict=True))
    data["created_at"] = codec.value(data["created_at"])
    data["last_activity"] = codec.value(data["last_activity"])
    return Session.model_validate(data)


def lease_from_row(row: Row, codec: Codec) -> dict[str, Any]:
    data = dict(zip(LEASE_COLUMNS, row, strict=True))
    data["acquired_at"] = codec.value(data["acquired_at"])
    data["expires_at"] = codec.value(data["expires_at"])
    data["cancel_requested"] = bool(data["cancel_requested"])
    return data


# -- events ------------------------------------------------------------------------------------


def event_from_row(row: Row, session_id: str, codec: Codec) -> Event:
    """A validated `Event` (fails fast on an unknown kind or schema version)."""
    id_, seq, _kind, ts, actor, schema_version, payload = row
    return parse_event(
        {
            "id": id_,
            "session_id": session_id,
            "seq": seq,
            "ts": codec.value(ts),
            "actor": actor,
            "schema_version": schema_version,
            "payload": from_json(payload, cache_strings="keys"),
        }
    )


def event_dicts(rows: Iterable[Row], session_id: str, codec: Codec) -> Iterator[dict[str, Any]]:
    """`Event.to_json_dict()` of each row, built from the stored JSON without validation.

    The payload text is parsed by pydantic-core's JSON parser (no model, no validation), which
    gives what `json.loads` gives about three times faster.
    """
    versions = SCHEMA_VERSIONS
    ts_json, shapes = codec.json, _payload_shapes()
    for id_, seq, kind, ts, actor, schema_version, payload in rows:
        if schema_version not in versions:
            raise _unreadable(
                id_,
                f"unknown event schema version {schema_version}; upgrade "
                "Branchwork to read this history",
            )
        data = from_json(payload, cache_strings="keys")
        shape = shapes.get(kind)
        if shape is None or data.keys() != shape.names:
            data = _complete(id_, kind, data, shape)
        yield {
            "id": id_,
            "session_id": session_id,
            "seq": seq,
            "ts": ts_json(ts),
            "actor": actor,
            "schema_version": schema_version,
            "payload": data,
            "kind": kind,
        }


def event_lines(rows: Iterable[Row], session_id: str, codec: Codec) -> Iterator[tuple[int, str]]:
    """Each row's seq, and the row as one line of JSON equal (once parsed) to
    `Event.to_json_dict()`.

    A payload of the current schema version is written complete (a field added later bumps
    the version: see `SCHEMA_VERSIONS`), so its stored JSON text is passed through as it is,
    never parsed; an older one goes through `event_dicts` to get its defaults.
    """
    ts_json = codec.json
    for row in rows:
        id_, seq, kind, ts, actor, schema_version, payload = row
        if schema_version != SCHEMA_VERSION:
            yield seq, json.dumps(next(event_dicts([row], session_id, codec)))
            continue
        yield (
            seq,
            (
                f'{{"id": "{id_}", "session_id": "{session_id}", "seq": {seq}, '
                f'"ts": "{ts_json(ts)}", "actor": "{actor}", "schema_version": {schema_version}, '
                f'"payload": {payload}, "kind": "{kind}"}}'
            ),
        )


@dataclass(frozen=True)
class _Shape:
    """A payload kind's fields in model order, and the JSON form of their defaults."""

    order: tuple[str, ...]
    names: frozenset[str]
    defaults: dict[str, Any]


@cache
def _payload_shapes() -> dict[str, _Shape]:
    shapes = {}
    for model in get_args(get_args(Payload)[0]):
        fields = model.model_fields
        defaults = {
            name: to_jsonable_python(field.get_default(call_default_factory=True))
            for name, field in fields.items()
            if not field.is_required()
        }
        kind = fields["kind"].default
        shapes[kind] = _Shape(tuple(fields), frozenset(fields), defaults)
    return shapes


def _complete(id_: str, kind: str, data: dict[str, Any], shape: _Shape | None) -> dict[str, Any]:
    """A payload written before some optional fields existed gets their defaults, as parsing
    would give it; an unknown kind or a missing or unknown field fails as parsing would."""
    if shape is None:
        raise _unreadable(id_, f"unknown event kind {kind!r}; upgrade Branchwork")
    unknown = data.keys() - shape.names
    missing = shape.names - data.keys() - shape.defaults.keys()
    if unknown or missing:
        raise _unreadable(
            id_,
            f"payload fields {sorted(unknown)} unknown, {sorted(missing)} "
            "missing; upgrade Branchwork to read this history",
        )
    return {
        name: data[name] if name in data else copy.deepcopy(shape.defaults[name])
        for name in shape.order
    }


def _unreadable(id_: str, why: str) -> StoreError:
    return StoreError(f"unreadable event {id_}: {why}")
