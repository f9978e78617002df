"""The export routes' query and their answer: one body in the media type of the format."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from syncd.api.models._base import Body
from syncd.api.models.content import PM_DOC_REF
from syncd.api.operations import MediaTypes

Format = Literal["html", "markdown", "text", "json"]


class ExportQuery(Body):
    format: Format = Field(
        default="html", description="html (default; sanitised), markdown, text or json"
    )


_Text = Annotated[str, Field(description="the note's content in the asked format")]
#: the sanitised ProseMirror JSON (what `format=json` answers)
_Doc = Annotated[dict[str, Any], WithJsonSchema(PM_DOC_REF)]

EXPORT = MediaTypes(
    {"text/html": _Text, "text/markdown": _Text, "text/plain": _Text, "application/json": _Doc}
)
