"""Text Branchwork records must be valid UTF-8: the history is UTF-8 JSON.

A name or a line that came from bytes that are not UTF-8 (a file name, an argument, a directory)
reaches Python with lone surrogates in it (`os.fsdecode`), and JSON can carry them too
(`"\\udcff"`). Such text is refused where it enters, with what to do, before anything is
changed: never half-done (a file written whose write could not be recorded).
"""

from __future__ import annotations

from branchwork.domain.errors import InvalidInput


def require_utf8(
    value: str, what: str, remedy: str, error: type[InvalidInput] = InvalidInput
) -> None:
    """Raise `error` naming `what` (its odd characters escaped) and `remedy` unless `value`
    is valid UTF-8 text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{what} `{_shown(value)}` is not valid UTF-8; {remedy}") from None


def _shown(value: str) -> str:
    """The text with its odd characters escaped: the bytes it came from (`\\xff`) when it was
    made by `os.fsdecode`, else the code points (`\\ud800`)."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
