"""The one check a ProseMirror doc from a REST body goes through: its shape and the safe
schema, in a single walk (`validate_pm_json` visiting each node with `check_node_safe`)."""

from __future__ import annotations

from typing import Any

from ._safety import check_node_safe
from ._validate import validate_pm_json

__all__ = ["CheckedDoc", "check_doc"]


class CheckedDoc(dict[str, Any]):
    """A ProseMirror doc that `check_doc` accepted: `write_json` takes it without checking
    it again (the REST layer checks a body's content once, then passes this down). Do not
    mutate one; a changed doc is a plain dict again (`CheckedDoc(...)` is only for
    `check_doc`)."""


def check_doc(pm_json: object) -> CheckedDoc:
    """*pm_json* as a `CheckedDoc` when it has the ProseMirror shape (`validate_pm_json`'s
    default bounds) and stays within the safe schema; else `ContentError`, or its subclass
    `UnsafeContent` with the JSON pointer of the offending value within the doc."""
    if isinstance(pm_json, CheckedDoc):
        return pm_json
    return CheckedDoc(validate_pm_json(pm_json, visit=check_node_safe))
