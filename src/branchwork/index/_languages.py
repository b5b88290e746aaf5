"""Which language a path is written in, decided by its name alone.

The language is a property of a *path*, not of a blob: the same content can be `a.ts` in one view
and `a.txt` in another. Symbols are therefore stored per (blob, language).
"""

from __future__ import annotations

from branchwork.domain.errors import InvalidInput

# Languages with a tree-sitter grammar wheel: their files get symbols.
PARSEABLE: frozenset[str] = frozenset(
    {"python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp"}
)

_BY_SUFFIX: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp",
    ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp", ".h++": "cpp", ".ipp": "cpp",
    ".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".txt": "text",
    ".html": "html", ".htm": "html", ".css": "css", ".scss": "css",
    ".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".xml": "xml",
    ".sh": "shell", ".bash": "shell", ".sql": "sql", ".rb": "ruby", ".php": "php",
    ".kt": "kotlin", ".swift": "swift", ".cs": "csharp", ".scala": "scala",
}  # fmt: skip

_BY_NAME: dict[str, str] = {
    "Makefile": "make",
    "Dockerfile": "docker",
    "README": "text",
}

# Names accepted by the `language=` filter, mapped to the languages they select.
_ALIASES: dict[str, frozenset[str]] = {
    "py": frozenset({"python"}),
    "js": frozenset({"javascript"}),
    "ts": frozenset({"typescript", "tsx"}),
    "typescript": frozenset({"typescript", "tsx"}),
    "golang": frozenset({"go"}),
    "rs": frozenset({"rust"}),
    "c++": frozenset({"cpp"}),
    "md": frozenset({"markdown"}),
}

DOCUMENT_KINDS: frozenset[str] = frozenset({"markdown", "text", "pdf"})


def language_of(path: str) -> str | None:
    """The language of `path` (a repository path with `/` separators), or None if unknown."""
    name = path.rpartition("/")[2]
    dot = name.rfind(".")
    suffix = name[dot:].lower() if dot > 0 else ""  # as pathlib: ".bashrc" has no suffix
    return _BY_SUFFIX.get(suffix) or _BY_NAME.get(name)


def known_languages() -> frozenset[str]:
    return frozenset(_BY_SUFFIX.values()) | frozenset(_BY_NAME.values()) | DOCUMENT_KINDS


def resolve_language_filter(language: str | None) -> frozenset[str] | None:
    """The set of stored languages a `language=` filter selects; None means no filter."""
    if language is None:
        return None
    name = language.strip().lower()
    if name in _ALIASES:
        return _ALIASES[name]
    if name in known_languages():
        return frozenset({name})
    choices = ", ".join(sorted(known_languages()))
    raise InvalidInput(f"unknown language {language!r}; use one of: {choices}")
