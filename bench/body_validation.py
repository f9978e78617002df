"""Microseconds per call of REST body validation, in-process (no HTTP): a create with 20
paragraphs of ProseMirror JSON, and a PUT of content with 20 and 200 paragraphs.

Counts everything a body goes through between `syncd.api.inputs` and the Yjs writer,
including the writer's own content check (which `CheckedDoc` skips since the models).
Runs on either tree, so `PYTHONPATH=<old tree> python bench/body_validation.py` measures
the hand-written checker for comparison.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from typing import Any


def _doc(paragraphs: int) -> dict[str, Any]:
    def paragraph(i: int) -> dict[str, Any]:
        return {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": f"line {i} with some words "},
                {"type": "text", "text": "bold", "marks": [{"type": "bold"}]},
                {
                    "type": "text",
                    "text": " and a link",
                    "marks": [{"type": "link", "attrs": {"href": "https://example.com"}}],
                },
            ],
        }

    return {"type": "doc", "content": [paragraph(i) for i in range(paragraphs)]}


def _create(paragraphs: int) -> dict[str, Any]:
    return {
        "title": "A note",
        "leadId": "lead-1",
        "permissions": {"canView": ["ann", "bob"], "canEdit": ["ann"]},
        "metadata": {"tags": ["a", "b"], "category": "call", "dueDate": "2025-01-02"},
        "contentJson": _doc(paragraphs),
    }


def _validators() -> tuple[Callable[[dict[str, Any]], object], Callable[[dict[str, Any]], object]]:
    try:
        from syncd.api.models.notes import CreateNote, UpdateNote
        from syncd.api.validation import parse
        from syncd.content import check_doc

        def create(body: dict[str, Any]) -> object:
            doc = parse(CreateNote, body).doc
            return check_doc(doc)  # what `write_json` does: returns a CheckedDoc as it is

        def update(body: dict[str, Any]) -> object:
            return check_doc(parse(UpdateNote, body).doc)

        return create, update
    except ImportError:  # the tree before the models
        from syncd.api.note_schemas import CREATE_NOTE, UPDATE_NOTE
        from syncd.api.schema import check

        from syncd.api import note_shapes as shapes
        from syncd.content import validate_pm_json

        def create_old(body: dict[str, Any]) -> object:
            check(CREATE_NOTE, body)
            shapes.parse_title(body["title"])
            shapes.parse_lead_id(body.get("leadId"))
            shapes.parse_permissions(body.get("permissions") or {})
            shapes.parse_metadata(body.get("metadata") or {})
            return validate_pm_json(shapes.parse_content(body))  # and again in write_json

        def update_old(body: dict[str, Any]) -> object:
            check(UPDATE_NOTE, body)
            return validate_pm_json(shapes.parse_content(body))

        return create_old, update_old


def main() -> None:
    create, update = _validators()
    cases = [
        ("create, 20 paragraphs", create, _create(20)),
        ("PUT content, 20 paragraphs", update, {"contentJson": _doc(20)}),
        ("PUT content, 200 paragraphs", update, {"contentJson": _doc(200)}),
    ]
    for name, validate, body in cases:
        # CPU time of this process: the machine is shared, wall time counts the neighbours
        timer = timeit.Timer(lambda v=validate, b=body: v(b), timer=time.process_time)
        loops, _ = timer.autorange()
        best = min(timer.repeat(repeat=7, number=loops)) / loops
        print(f"{name:30} {best * 1e6:9.1f} µs")


if __name__ == "__main__":
    main()
