"""The definitions of one file's content, without indexing it (for one-off questions such as
"which function does this changed line belong to")."""

from __future__ import annotations

import hashlib

from branchwork.index._chunks import is_binary
from branchwork.index._languages import language_of
from branchwork.index._models import Symbol
from branchwork.index._symbols import extract_symbols, has_grammar


def definitions_in(path: str, data: bytes) -> list[Symbol]:
    """The definitions tree-sitter finds in `data`, the content of `path` (its language by its
    name); none for a language without a grammar, or binary content."""
    language = language_of(path)
    if language is None or not has_grammar(language) or is_binary(data):
        return []
    sha = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
    return [
        Symbol(
            name=row.name,
            kind=row.kind,
            container=row.container,
            path=path,
            line=row.name_line,
            start_line=row.start_line,
            end_line=row.end_line,
            language=language,
            blob_sha=sha,
        )
        for row in extract_symbols(data, language)
    ]
