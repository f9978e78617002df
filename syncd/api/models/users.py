"""Bodies of the user routes: the CRM registers its users; a user sets their own e-mail
opt-out."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from syncd.api.models._base import Body, NotBlank, Out, name_field
from syncd.api.models.notes import UserId

#: an address as SMTP takes it: one @, no white space or control characters (a line break
#: would be a header injection); the mail server is the judge of the rest. White space is
#: spelled out: `\s` means different sets to the Rust, Python and ECMA engines that read it
_NOT_IN_ADDRESS = (
    r"@ \u0000-\u001f\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_PART = rf"[^{_NOT_IN_ADDRESS}]+"
EMAIL_PATTERN = rf"^{_PART}@{_PART}\.{_PART}$"
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=EMAIL_PATTERN)]
Name = Annotated[str, name_field(200), NotBlank]


class UserUpdate(Body):
    """What is given changes (null clears a name or e-mail); what is left out stays."""

    name: Name | None = None
    email: Email | None = None
    # never null: true or false, or left out
    emailNotifications: bool = Field(  # type: ignore[assignment]
        default=None, description="false: the user gets no notification e-mail"
    )


class UserSettings(Body):
    emailNotifications: bool = Field(description="false: no notification e-mail for me")


class User(Out):
    id: str
    name: str | None
    email: str | None
    roles: list[str] = Field(description="as last seen in one of the user's tokens")
    emailNotifications: bool


__all__ = ["Email", "User", "UserId", "UserSettings", "UserUpdate"]
