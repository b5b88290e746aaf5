"""Roles per project: each includes the ones before it; `*` holds for every project; a share
link reads its one session only."""

from __future__ import annotations

import pytest

from branchwork import ROLES, Principal


def _principal(grants: dict[str, str], session_id: str | None = None) -> Principal:
    return Principal.model_validate(
        {"user_id": "u", "name": "n", "token_id": "t", "grants": grants, "session_id": session_id}
    )


@pytest.mark.parametrize("held", ROLES)
def test_a_role_includes_the_roles_before_it(held: str) -> None:
    principal = _principal({"p1": held})
    for needed in ROLES:
        assert principal.may("p1", needed) == (ROLES.index(held) >= ROLES.index(needed))
        assert not principal.may("p2", needed)


def test_the_highest_of_a_project_grant_and_an_every_project_grant_counts() -> None:
    principal = _principal({"*": "viewer", "p1": "maintainer"})
    assert principal.role_in("p1") == "maintainer" and principal.role_in("p9") == "viewer"
    assert not principal.is_admin and _principal({"*": "admin"}).is_admin
    assert not _principal({"p1": "admin"}).is_admin  # an admin of one project only


def test_a_share_link_reads_its_session_and_nothing_else() -> None:
    link = _principal({}, session_id="s1")
    assert link.may("p1", "viewer", session_id="s1")
    assert not link.may("p1", "viewer", session_id="s2")
    assert not link.may("p1", "member", session_id="s1")
    assert link.role_in("p1") is None and not link.is_admin
