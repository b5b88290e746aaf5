"""Context documents: Markdown, text and PDF, searched and referenced together with the code."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from branchwork.domain.errors import InvalidInput, NotFound
from branchwork.index import CodeIndex
from tests.index.conftest import new_repo

SPEC = "# Checkout spec\n\nThe cart applies `apply_discount` before tax.\n\nRefunds take 5 days.\n"


def minimal_pdf(lines: list[str], *, title: str | None = None) -> bytes:
    """A one-page PDF showing `lines` in Helvetica, written by hand (offsets computed)."""
    text = " T* ".join(f"({line})Tj" for line in lines)
    content = f"BT /F1 12 Tf 14 TL 72 720 Td {text} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    if title is not None:
        objects.append(b"<< /Title (" + title.encode() + b") >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    info = b" /Info %d 0 R" % len(objects) if title is not None else b""
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\n" % (len(objects) + 1, info)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


@pytest.fixture
def tree(tmp_path: Path, index: CodeIndex) -> str:
    files: dict[str, str | bytes] = {
        "shop/cart.py": "def apply_discount(cart):\n    return cart\n",
    }
    return index.index_view(new_repo(tmp_path / "repo", files), "HEAD").tree


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "spec.md").write_text(SPEC)
    (folder / "notes.txt").write_text("plain notes about apply_discount\n")
    (folder / "policy.pdf").write_bytes(
        minimal_pdf(["Refund policy", "Use apply_discount once per order."], title="Policy")
    )
    return folder


def test_documents_are_searched_together_with_code(index: CodeIndex, tree: str, docs: Path) -> None:
    spec = index.add_document("p1", docs / "spec.md")
    pdf = index.add_document("p1", docs / "policy.pdf")

    hits = index.search(tree, "apply_discount", project_id="p1")

    found = {(h.source, h.path, h.line, h.document_id) for h in hits}
    assert found == {
        ("code", "shop/cart.py", 1, None),
        ("document", "spec.md", 3, spec.id),
        ("document", "policy.pdf", 2, pdf.id),
    }
    assert [h.source for h in index.search(tree, "apply_discount")] == ["code"]
    assert [h.path for h in index.search(tree, "refund", project_id="p1", language="pdf")] == [
        "policy.pdf"
    ]


def test_titles_kinds_and_listing(index: CodeIndex, docs: Path) -> None:
    spec = index.add_document("p1", docs / "spec.md")
    notes = index.add_document("p1", docs / "notes.txt")
    pdf = index.add_document("p1", docs / "policy.pdf")

    assert (spec.title, spec.kind, spec.lines) == ("Checkout spec", "markdown", 5)
    assert (notes.title, notes.kind) == ("notes", "text")
    assert (pdf.title, pdf.kind) == ("Policy", "pdf")
    assert [d.id for d in index.list_documents("p1")] == [spec.id, notes.id, pdf.id]
    assert index.list_documents("p2") == []
    assert "Use apply_discount once per order." in index.document_text("p1", "Policy")
    assert index.document_text("p1", spec.id) == SPEC


def test_documents_are_referenced_like_code(index: CodeIndex, tree: str, docs: Path) -> None:
    index.add_document("p1", docs / "spec.md")

    refs = index.references("apply_discount", tree, project_id="p1")

    assert [(r.source, r.path, r.line, r.is_definition) for r in refs] == [
        ("code", "shop/cart.py", 1, True),
        ("document", "spec.md", 3, False),
    ]


def test_identical_documents_are_indexed_once(index: CodeIndex, tmp_path: Path, docs: Path) -> None:
    first = index.add_document("p1", docs / "spec.md")
    copy = tmp_path / "copy.md"
    copy.write_text(SPEC)
    chunks_before = _chunk_rows(index.db_path)

    other_project = index.add_document("p2", copy)
    same_project = index.add_document("p1", copy)

    assert other_project.blob_sha == first.blob_sha and other_project.id != first.id
    assert same_project.id == first.id  # the same text is already a document of p1
    assert _chunk_rows(index.db_path) == chunks_before


def test_adding_a_path_again_refreshes_it(index: CodeIndex, tree: str, docs: Path) -> None:
    first = index.add_document("p1", docs / "spec.md")
    (docs / "spec.md").write_text("# Checkout spec v2\n\nNo more apply_discount.\n")

    second = index.add_document("p1", docs / "spec.md")

    assert second.id == first.id and second.title == "Checkout spec v2"
    assert [
        h.line for h in index.search(tree, "apply_discount", project_id="p1", language="md")
    ] == [3]
    assert index.search(tree, "Refunds", project_id="p1") == []


def test_removing_by_title_id_or_name(index: CodeIndex, tree: str, docs: Path) -> None:
    spec = index.add_document("p1", docs / "spec.md")
    index.add_document("p1", docs / "notes.txt")
    pdf = index.add_document("p1", docs / "policy.pdf")

    assert index.remove_document("p1", "Checkout spec").id == spec.id
    assert index.remove_document("p1", "notes.txt").title == "notes"
    assert index.remove_document("p1", pdf.id[-8:].lower()).id == pdf.id
    assert index.list_documents("p1") == []
    assert index.search(tree, "Refund", project_id="p1") == []
    with pytest.raises(NotFound, match="list the project's documents"):
        index.remove_document("p1", "Checkout spec")


def test_unusable_documents_are_refused_with_a_remedy(index: CodeIndex, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="check the path"):
        index.add_document("p1", tmp_path / "missing.md")
    binary = tmp_path / "image.md"
    binary.write_bytes(b"\x89PNG\x00\x00")
    with pytest.raises(InvalidInput, match="binary"):
        index.add_document("p1", binary)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot really a pdf")
    with pytest.raises(InvalidInput, match="PDF"):
        index.add_document("p1", broken)


def _chunk_rows(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT count(*) FROM chunk_meta").fetchone()[0])
