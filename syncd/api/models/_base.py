"""The building blocks of every body model: strict models and bounded input strings.

Bodies reach a model only after `syncd.api.inputs` has decoded them (no NUL byte or
unpaired surrogate anywhere, bounded nesting, keys and numbers), so a string field does
not check for NUL bytes again: it only says so in the document (`NO_NUL`), so generated
clients and fuzzers see the real contract.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

__all__ = [
    "MAX_VALUE_TEXT",
    "NOT_BLANK",
    "NO_NUL",
    "Body",
    "NotBlank",
    "Out",
    "Timestamp",
    "name_field",
    "text_field",
]

#: a string without NUL bytes (`\u0000` is spelled as an escape, as ECMA and Python read it)
NO_NUL = r"^[^\u0000]*$"
#: ...that also holds something besides white space (the server strips and requires it)
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
#: the longest string of free-form input (as long as a note's plain-text content)
MAX_VALUE_TEXT = 1_000_000


class Body(BaseModel):
    """A request body or query: strict types (no `"1"` for 1), unknown keys refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Out(BaseModel):
    """A response body: documents what a handler returns (every field always present)."""

    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


#: with `name_field`: refuses a string of white space only (as `str.strip` sees it)
NotBlank = AfterValidator(_not_blank)


def text_field(
    max_length: int, *, min_length: int | None = None, description: str | None = None
) -> FieldInfo:
    """An input string of at most `max_length` characters (and no NUL byte)."""
    info: FieldInfo = Field(
        min_length=min_length,
        max_length=max_length,
        description=description,
        json_schema_extra={"pattern": NO_NUL},
    )
    return info


def name_field(max_length: int, *, description: str | None = None) -> FieldInfo:
    """An input string that must hold something besides white space (with `NotBlank`)."""
    info: FieldInfo = Field(
        min_length=1,
        max_length=max_length,
        description=description,
        json_schema_extra={"pattern": NOT_BLANK},
    )
    return info


Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
