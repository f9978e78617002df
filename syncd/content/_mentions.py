"""Who a note mentions, for @mention notifications."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MENTION_TOKEN", "extract_mentions"]

MENTION_TOKEN = re.compile(r"(?<![\w@.\-])@(\w(?:[\w.\-]*\w)?)")
"""An ``@userId`` typed as plain text: word characters, dots and dashes, starting and
ending with a word character (so "@ada." at a sentence end is "ada"), and not
preceded by a word character, "@", "." or "-" (so "bob@example.com" is no mention)."""


def extract_mentions(pm_json: dict[str, Any]) -> set[str]:
    """User ids mentioned in ProseMirror JSON: `mention` node ids and ``@userId`` text tokens.

    Text is scanned per run of adjacent text nodes, so a token split by marks
    ("@a" + bold "da") still counts; any other node ends the run.
    """
    found: set[str] = set()
    _walk(pm_json, found)
    return found


def _walk(node: Any, found: set[str]) -> None:
    if not isinstance(node, dict):
        return
    if node.get("type") == "mention":
        attrs = node.get("attrs")
        user_id = attrs.get("id") if isinstance(attrs, dict) else None
        if isinstance(user_id, str | int) and not isinstance(user_id, bool) and str(user_id):
            found.add(str(user_id))
    content = node.get("content")
    if not isinstance(content, list):
        return
    run: list[str] = []
    for child in content:
        if isinstance(child, dict) and child.get("type") == "text":
            text = child.get("text")
            if isinstance(text, str):
                run.append(text)
            continue
        _scan("".join(run), found)
        run.clear()
        _walk(child, found)
    _scan("".join(run), found)


def _scan(text: str, found: set[str]) -> None:
    if "@" in text:
        found.update(MENTION_TOKEN.findall(text))
