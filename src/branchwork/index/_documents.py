"""Context documents: Markdown, text or PDF (as text) attached to a project.

A document's text is stored like a file: hashed as a git blob (sha1 of `blob <size>\\0<text>`),
chunked into the same FTS table, so identical text is indexed once whatever project or view holds
it, and search finds it together with the code. A document is keyed by its source path within a
project: adding the same path again replaces its content and keeps its id.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from branchwork.domain.errors import InvalidInput, NotFound
from branchwork.domain.ids import new_id
from branchwork.index._chunks import count_lines, is_binary, split_chunks
from branchwork.index._models import Document
from branchwork.index._store import Store

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
_MARKDOWN = frozenset({".md", ".markdown", ".mdown", ".mkd"})
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_SELECT = (
    "SELECT d.id, d.project_id, d.title, d.name, d.source_path, d.kind, b.sha, b.lines, "
    "d.added_at FROM documents d JOIN blobs b ON b.id = d.blob_id "
)


def git_blob_sha(data: bytes) -> str:
    """The sha git would give `data` as a blob, so a document and a file share one entry."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def add_document(store: Store, project_id: str, path: Path) -> Document:
    source = path.expanduser().resolve()
    if source.is_dir():
        raise InvalidInput(f"{path} is a directory; add its documents one file at a time")
    if not source.is_file():
        raise NotFound(f"document {path} does not exist; check the path and add it again")
    text, kind, title = _read(source)
    data = text.encode("utf-8")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(
            f"document {path} has {len(data)} bytes of text, more than the "
            f"{MAX_DOCUMENT_BYTES} allowed; split it into smaller documents"
        )
    sha = git_blob_sha(data)
    chunks = split_chunks(text)
    with store.write():
        blob_id = store.save_blob(sha, "text", len(data), count_lines(text))
        if blob_id is not None:
            doc_id = _upsert(store, project_id, source, title, kind, blob_id)
            store.save_chunks([(blob_id, chunks)])
        else:
            doc_id = _upsert(store, project_id, source, title, kind, store.blob_id(sha))
    return _get(store, doc_id)


def _upsert(
    store: Store, project_id: str, source: Path, title: str, kind: str, blob_id: int | None
) -> str:
    row = store.conn.execute(
        "SELECT id FROM documents WHERE project_id = ? AND source_path = ?",
        (project_id, str(source)),
    ).fetchone()
    if row is not None:
        store.conn.execute(
            "UPDATE documents SET title = ?, kind = ?, blob_id = ?, added_at = ? WHERE id = ?",
            (title, kind, blob_id, _now(), row[0]),
        )
        return str(row[0])
    same = store.conn.execute(
        "SELECT id FROM documents WHERE project_id = ? AND blob_id = ?", (project_id, blob_id)
    ).fetchone()
    if same is not None:
        return str(same[0])  # the same text is already a document of this project
    doc_id = new_id()
    store.conn.execute(
        "INSERT INTO documents(id, project_id, title, name, source_path, kind, blob_id, added_at)"
        " VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
        (doc_id, project_id, title, source.name, str(source), kind, blob_id, _now()),
    )
    return doc_id


def list_documents(store: Store, project_id: str) -> list[Document]:
    rows = store.conn.execute(
        _SELECT + "WHERE d.project_id = ? ORDER BY d.added_at, d.id", (project_id,)
    )
    return [_document(row) for row in rows]


def remove_document(store: Store, project_id: str, key: str) -> Document:
    """Remove a document by id, short id, title or file name; its text goes at the next gc."""
    with store.write():
        document = find_document(store, project_id, key)
        store.conn.execute("DELETE FROM documents WHERE id = ?", (document.id,))
    return document


def find_document(store: Store, project_id: str, key: str) -> Document:
    rows = store.conn.execute(
        _SELECT + "WHERE d.project_id = ? AND (d.id = ? OR lower(substr(d.id, -8)) = lower(?) "
        "OR d.title = ? OR d.name = ?)",
        (project_id, key, key, key, key),
    ).fetchall()
    if not rows:
        raise NotFound(
            f"no document {key!r} in project {project_id}; list the project's documents "
            "to see their ids and titles"
        )
    if len(rows) > 1:
        ids = ", ".join(row[0] for row in rows)
        raise InvalidInput(f"{key!r} names several documents ({ids}); pass one of these ids")
    return _document(rows[0])


def document_text(store: Store, project_id: str, key: str) -> str:
    """The document's stored text, rebuilt from its chunks."""
    document = find_document(store, project_id, key)
    rows = store.conn.execute(
        "SELECT m.start_line, m.owned_end, c.content FROM chunk_meta m "
        "JOIN blobs b ON b.id = m.blob_id JOIN chunks c ON c.rowid = m.id "
        "WHERE b.sha = ? ORDER BY m.start_line",
        (document.blob_sha,),
    )
    lines: list[str] = []
    for start, owned_end, content in rows:
        lines.extend(content.split("\n")[: owned_end - start + 1])
    return "\n".join(lines) + ("\n" if lines else "")


def _get(store: Store, doc_id: str) -> Document:
    row = store.conn.execute(_SELECT + "WHERE d.id = ?", (doc_id,)).fetchone()
    return _document(row)


def _document(row: Any) -> Document:
    doc_id, project_id, title, name, source_path, kind, sha, lines, added_at = row
    return Document(
        id=doc_id,
        project_id=project_id,
        title=title,
        name=name,
        source_path=source_path,
        kind=kind,
        blob_sha=sha,
        lines=lines,
        added_at=datetime.fromisoformat(added_at),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _read(path: Path) -> tuple[str, str, str]:
    """(text, kind, title) of the file at `path`."""
    if path.suffix.lower() == ".pdf":
        return _read_pdf(path)
    data = path.read_bytes()
    if is_binary(data):
        raise InvalidInput(f"{path} is a binary file; add Markdown, plain text or PDF documents")
    text = data.decode("utf-8", errors="replace")
    kind = "markdown" if path.suffix.lower() in _MARKDOWN else "text"
    heading = _HEADING.search(text) if kind == "markdown" else None
    return text, kind, heading.group(1) if heading else path.stem


def _read_pdf(path: Path) -> tuple[str, str, str]:
    from pypdf import PdfReader  # imported on first use: it costs every command 60 ms
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings are ours to phrase

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise InvalidInput(f"{path} is an encrypted PDF; add a decrypted copy")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata is not None else None
    except (PyPdfError, ValueError, KeyError, OSError) as exc:
        raise InvalidInput(f"{path} could not be read as a PDF ({exc}); check the file") from exc
    text = "\n\f\n".join(page.rstrip("\n") for page in pages)
    if not text.strip():
        raise InvalidInput(
            f"{path} has no extractable text (a scanned PDF?); add a text version instead"
        )
    return text + "\n", "pdf", (title or "").strip() or path.stem
