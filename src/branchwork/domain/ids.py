"""Identifiers: ULIDs (sortable, unique across processes) and their short forms."""

from __future__ import annotations

import re
import unicodedata

_SLUG_STRIP = re.compile(r"[^a-z0-9]+")


def new_id() -> str:
    """A new ULID as a 26-character string."""
    from ulid import ULID  # imported when first needed: ~20 ms that reading commands skip

    return str(ULID())


def short_id(full_id: str) -> str:
    """The 8-character short form shown to people: the random tail of the ULID, lowercased."""
    return full_id[-8:].lower()


def slugify(text: str, *, max_length: int = 40) -> str:
    """A branch-safe slug: lowercase ASCII letters, digits and dashes (accents dropped)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _SLUG_STRIP.sub("-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "session"
