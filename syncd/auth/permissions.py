"""What a principal may do with one note: the single place where rights are decided."""

from __future__ import annotations

import enum
from typing import Protocol

from syncd.auth.tokens import Principal


class Access(enum.IntEnum):
    """Ordered rights; each level includes the ones below it except DELETE, checked apart."""

    NONE = 0
    VIEW = 1
    EDIT = 2


class NoteGrant(Protocol):
    """What storage knows of one user's rights on one note."""

    @property
    def owner(self) -> bool: ...
    @property
    def can_view(self) -> bool: ...
    @property
    def can_edit(self) -> bool: ...
    @property
    def can_delete(self) -> bool: ...


def resolve_access(principal: Principal, grant: NoteGrant | None) -> tuple[Access, bool]:
    """Return (access level, may delete). Edit implies view; owners and admins have all."""
    if principal.privileged:
        return Access.EDIT, True
    return grant_access(grant)


def grant_access(grant: NoteGrant | None) -> tuple[Access, bool]:
    """Rights from per-note grants alone (for a user whose roles give nothing extra)."""
    if grant is None:
        return Access.NONE, False
    if grant.owner:
        return Access.EDIT, True
    if grant.can_edit:
        return Access.EDIT, grant.can_delete
    if grant.can_view or grant.can_delete:
        return Access.VIEW, grant.can_delete
    return Access.NONE, False
