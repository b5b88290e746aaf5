"""Identifiers: ULIDs (sortable, unique across processes) and their short forms."""

from __future__ import annotations

import re
import secrets
import time
import unicodedata

_SLUG_STRIP = re.compile(r"[^a-z0-9]+")


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two characters (10 bits) per lookup: 13 lookups make the 26 characters (130 bits), five for
# the 48 bits of time (with 2 leading zero bits), eight for the 80 random bits.
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_TIME_SHIFTS = tuple(range(40, -1, -10))
_RANDOM_SHIFTS = tuple(range(70, -1, -10))


def new_id() -> str:
    """A new ULID: 48 bits of milliseconds since the epoch, then 80 random bits, in Crockford
    base32 (26 characters; sortable by creation time).

    Decision: encoded here rather than with python-ulid, whose import costs ~20 ms of start-up
    and whose ids are 3.3 µs each (an event append spends ~25 µs in all); and whose default is
    monotonic within a millisecond (the random part counts up), so ids made in the same
    millisecond would share all but their last characters, and so would their short forms.
    Every id here has 80 fresh random bits from the OS (not the `random` module, whose global
    state belongs to the program: tests seeding it, or checking it is left alone, as Hypothesis
    does, must not see ids being made in other threads).
    """
    return new_ids(1)[0]


def new_ids(count: int) -> list[str]:
    """`count` new ULIDs of this millisecond, their random bits read from the OS at once (an
    append of a step's events takes ids for all of them: one system call, not ten)."""
    stamp = time.time_ns() // 1_000_000
    head = "".join([_PAIRS[(stamp >> shift) & 1023] for shift in _TIME_SHIFTS])
    noise = secrets.token_bytes(10 * count)
    return [
        head + "".join([_PAIRS[(value >> shift) & 1023] for shift in _RANDOM_SHIFTS])
        for start in range(0, 10 * count, 10)
        for value in [int.from_bytes(noise[start : start + 10], "big")]
    ]


def short_id(full_id: str) -> str:
    """The 8-character short form shown to people: the random tail of the ULID, lowercased."""
    return full_id[-8:].lower()


def slugify(text: str, *, max_length: int = 40) -> str:
    """A branch-safe slug: lowercase ASCII letters, digits and dashes (accents dropped)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _SLUG_STRIP.sub("-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "session"
