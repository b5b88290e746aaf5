"""Ids: ULIDs made by `new_id`, their short forms and slugs."""

from __future__ import annotations

import time

from hypothesis import given, strategies as st

from branchwork.domain.ids import new_id, short_id, slugify

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def _millis(ulid: str) -> int:
    """The timestamp of a ULID: its first 10 characters, base32."""
    digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return sum(digits.index(c) << (5 * (9 - i)) for i, c in enumerate(ulid[:10]))


def test_ids_are_ulids_carrying_the_time_of_creation() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert len(made) == 26 and set(made) <= CROCKFORD and made[0] in "01234567"
    assert before <= _millis(made) <= after


def test_ids_made_in_the_same_millisecond_differ_in_their_short_forms() -> None:
    made = [new_id() for _ in range(2000)]
    assert len(set(made)) == len(made)
    assert len({short_id(m) for m in made}) == len(made)
    assert sorted(made, key=_millis) == sorted(made, key=lambda m: m[:10])


@given(st.text())
def test_slugs_are_branch_safe(text: str) -> None:
    slug = slugify(text)
    assert slug and len(slug) <= 40
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in slug)
    assert not slug.startswith("-") and not slug.endswith("-")
