"""A note's rich text in a pycrdt Doc, laid out exactly as y-prosemirror lays it out.

Read it as ProseMirror JSON or plain text, and write ProseMirror JSON (or plain
text via `text_to_json`) back as one CRDT update that connected editors apply
like any peer's edit.  What a note may carry is the safe schema of `schema`:
REST writes are checked against it (`check_doc`, in the same pass as their shape),
Yjs updates written over REST by `check_update_safe`, and every output is cleaned
(`sanitize`).
"""

from ._check import CheckedDoc, check_doc
from ._guard import check_update_safe
from ._mentions import extract_mentions
from ._safety import UnsafeContent, check_safe, sanitize
from ._validate import MAX_TEXT, ContentError, validate_pm_json
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
    "UnsafeContent",
    "check_doc",
    "check_safe",
    "check_update_safe",
    "doc_to_json",
    "doc_to_text",
    "extract_mentions",
    "fragment_to_json",
    "fragment_to_text",
    "json_to_text",
    "sanitize",
    "text_to_json",
    "validate_pm_json",
    "write_json",
]
