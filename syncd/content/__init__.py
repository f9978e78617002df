"""A note's rich text in a pycrdt Doc, laid out exactly as y-prosemirror lays it out.

Read it as ProseMirror JSON or plain text, and write ProseMirror JSON (or plain
text via `text_to_json`) back as one CRDT update that connected editors apply
like any peer's edit.
"""

from ._mentions import extract_mentions
from ._validate import MAX_TEXT, CheckedDoc, ContentError, check_doc, validate_pm_json
from ._write import write_json
from .prosemirror import (
    DEFAULT_FIELD,
    doc_to_json,
    doc_to_text,
    fragment_to_json,
    fragment_to_text,
    json_to_text,
    text_to_json,
)

__all__ = [
    "DEFAULT_FIELD",
    "MAX_TEXT",
    "CheckedDoc",
    "ContentError",
    "check_doc",
    "doc_to_json",
    "doc_to_text",
    "extract_mentions",
    "fragment_to_json",
    "fragment_to_text",
    "json_to_text",
    "text_to_json",
    "validate_pm_json",
    "write_json",
]
