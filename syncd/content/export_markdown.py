"""A note's content as CommonMark, rendered from safe ProseMirror JSON.

Text is backslash-escaped wherever CommonMark could read it as markup, so a note that
says `**not bold**` or `# not a heading` reads back as that text.  Marks are opened and
closed as a stack across adjacent text nodes (one `**` around a run, not one per node),
and whitespace is kept outside the delimiters (`** x**` would not be emphasis).  Where
CommonMark has no syntax, the text stays and the formatting goes (underline,
sub/superscript); strike uses GFM's `~~` and tables GFM's pipe tables, which plain
CommonMark readers show as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ._safety import sanitize

__all__ = ["render_markdown"]

_MD_MARKS = {  # mark type: (open, close), outermost first
    "link": None,
    "strong": ("**", "**"),
    "bold": ("**", "**"),
    "em": ("*", "*"),
    "italic": ("*", "*"),
    "strike": ("~~", "~~"),
}
_ORDER = list(_MD_MARKS)
# ASCII punctuation CommonMark could take as inline markup anywhere in a line
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>&~|!])")
# ...and what starts a block when it opens a line
_LINE_START = re.compile(r"^( {0,3})(?:([#>+=-])|(\d{1,9})([.)]))")
_INDENTED = re.compile(r"^ {4}")


def render_markdown(pm_json: Mapping[str, Any]) -> str:
    """CommonMark of *pm_json* (cleaned by `sanitize` first), ending in one newline."""
    blocks = _blocks(sanitize(pm_json).get("content", []))
    return "\n\n".join(blocks).rstrip("\n") + "\n" if blocks else ""


_BULLETS = ("bullet_list", "bulletList", "taskList")
_ORDERED = ("ordered_list", "orderedList")


def _blocks(nodes: list[Mapping[str, Any]]) -> list[str]:
    """The blocks' Markdown. Two lists of one family in a row (a bullet list then a task
    list, say) would read as one list in CommonMark, a blank line between them or not:
    the second takes the other marker (`*` for `-`, `)` for `.`), which starts a new list."""
    out: list[str] = []
    family, alternate = "", False
    for node in nodes:
        kind = node["type"]
        this = "bullet" if kind in _BULLETS else "ordered" if kind in _ORDERED else ""
        alternate = bool(this) and this == family and not alternate
        block = _block(node, alternate)
        if block is not None:
            out.append(block)
            family = this
    return out


def _block(node: Mapping[str, Any], alternate: bool = False) -> str | None:
    kind = node["type"]
    attrs = node.get("attrs") or {}
    content = node.get("content") or []
    if kind in ("paragraph",):
        return _escape_lines(_inline(content))
    if kind == "text":  # text directly under the doc (never written by y-prosemirror)
        return _escape_lines(_inline([node]))
    if kind == "heading":
        level = int(attrs.get("level") or 1)
        text = _inline(content).replace("\\\n", " ").replace("\n", " ").replace("#", "\\#")
        return "#" * level + " " + text if text.strip() else "#" * level
    if kind in ("code_block", "codeBlock"):
        code = "".join(c.get("text", "") for c in content)
        fence = "`" * max(3, _longest_run(code, "`") + 1)
        language = re.sub(r"[`\s]", "", str(attrs.get("language") or ""))
        return f"{fence}{language}\n{code}\n{fence}" if code else f"{fence}{language}\n{fence}"
    if kind in ("horizontal_rule", "horizontalRule"):
        return "---"
    if kind == "blockquote":
        inner = "\n\n".join(_blocks(content))
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind in _BULLETS or kind in _ORDERED:
        return _list(kind, attrs, content, alternate)
    if kind == "table":
        return _table(content)
    if kind in ("image", "mention", "hard_break", "hardBreak"):  # an inline node as a block
        return _escape_lines(_inline([node]))
    nested = _blocks(content)  # list items and cells outside their parents, nested docs
    return "\n\n".join(nested) if nested else None


def _list(
    kind: str, attrs: Mapping[str, Any], items: list[Mapping[str, Any]], alternate: bool
) -> str:
    """`alternate`: the other marker (a new list right after one of the same family)."""
    ordered = kind in _ORDERED
    start = int(attrs.get("start", attrs.get("order", 1)) or 0) if ordered else 0
    lines: list[str] = []
    delimiter, bullet = (")", "*") if alternate else (".", "-")
    for i, item in enumerate(items):
        marker = f"{start + i}{delimiter}" if ordered else bullet
        pad = " " * (len(marker) + 1)
        if kind == "taskList":
            # GFM's task list item: the box opens the item's first paragraph
            checked = (item.get("attrs") or {}).get("checked") is True
            marker += " [x]" if checked else " [ ]"
        body = "\n\n".join(_blocks(item.get("content") or [])) or ""
        for j, line in enumerate(body.split("\n")):
            if j == 0:
                lines.append(f"{marker} {line}" if line else marker)
            else:
                lines.append(pad + line if line else "")
    return "\n".join(lines)


def _table(rows: list[Mapping[str, Any]]) -> str:
    cells = [
        [
            _inline(
                [n for block in cell.get("content") or [] for n in block.get("content") or []]
            ).replace("\n", " ")
            for cell in row.get("content") or []
        ]
        for row in rows
    ]
    if not cells:
        return ""
    width = max(len(row) for row in cells) or 1
    cells = [row + [""] * (width - len(row)) for row in cells]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def _escape_lines(text: str) -> str:
    return "\n".join(_escape_line(line) for line in text.split("\n"))


def _escape_line(line: str) -> str:
    """Keep a line of text from opening a block: `# x`, `- x`, `1. x`, four spaces."""
    line = _INDENTED.sub("&#32;   ", line)
    match = _LINE_START.match(line)
    if match is None:
        return line
    if match.group(2):
        return f"{match.group(1)}\\{line[match.end(1) :]}"
    return f"{match.group(1)}{match.group(3)}\\{line[match.end(3) :]}"


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(f"{re.escape(char)}+", text)
    return max((len(r) for r in runs), default=0)


def _code_span(text: str) -> str:
    fence = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _url(url: str) -> str:
    if re.search(r"[\s()<>]", url):
        return "<" + url.replace("<", "%3C").replace(">", "%3E") + ">"
    return url


def _link_close(attrs: Mapping[str, Any]) -> str:
    title = attrs.get("title")
    quoted = ' "' + str(title).replace("\\", "\\\\").replace('"', '\\"') + '"' if title else ""
    return f"]({_url(str(attrs.get('href', '')))}{quoted})"


def _leaf(node: Mapping[str, Any]) -> str:
    """An inline node other than text, as Markdown."""
    kind = node["type"]
    attrs = node.get("attrs") or {}
    if kind in ("hard_break", "hardBreak"):
        return "\\\n"
    if kind == "mention":
        return _INLINE_SPECIAL.sub(r"\\\1", f"@{attrs.get('label') or attrs.get('id') or ''}")
    if kind == "image":
        alt = _INLINE_SPECIAL.sub(r"\\\1", str(attrs.get("alt") or ""))
        return f"![{alt}{_link_close({'href': attrs.get('src'), 'title': attrs.get('title')})}"
    return ""


# A delimiter: (kind "o"pen / "c"lose, pair number, mark); text is a plain str.
_Token = str | tuple[str, int, Mapping[str, Any]]
_HTML_TAGS = {"strong": "strong", "bold": "strong", "em": "em", "italic": "em", "strike": "del"}


def _inline(nodes: list[Mapping[str, Any]]) -> str:
    tokens: list[_Token] = []
    active: list[tuple[Mapping[str, Any], int]] = []
    trailing = ""
    pairs = 0
    for node in _merge_runs(nodes):
        is_code = any(m["type"] == "code" for m in node.get("marks") or [])
        marks = sorted(
            (m for m in node.get("marks") or [] if m["type"] in _MD_MARKS),
            key=lambda m: _ORDER.index(m["type"]),
        )
        if node["type"] == "text":
            raw = node["text"]
            core = raw.strip(" ")
            lead, trail = raw[: len(raw) - len(raw.lstrip(" "))], raw[len(raw.rstrip(" ")) :]
            if not core:
                trailing += raw
                continue
            body = _code_span(core) if is_code else _INLINE_SPECIAL.sub(r"\\\1", core)
        else:
            lead, trail, body = "", "", _leaf(node)
        keep = 0
        while keep < min(len(active), len(marks)) and active[keep][0] == marks[keep]:
            keep += 1
        tokens.extend(("c", pair, mark) for mark, pair in reversed(active[keep:]))
        tokens.append(trailing + lead)
        active = active[:keep]
        for mark in marks[keep:]:
            pairs += 1
            tokens.append(("o", pairs, mark))
            active.append((mark, pairs))
        tokens.append(body)
        trailing = trail
    tokens.extend(("c", pair, mark) for mark, pair in reversed(active))
    tokens.append(trailing)
    text = _resolve(tokens)
    while text.endswith("\\\n"):  # a hard break ending a block: CommonMark shows a "\\"
        text = text[:-2]
    return text


def _merge_runs(nodes: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Adjacent text nodes with the same marks as one (two code spans side by side would
    read as one span with a stray backtick pair)."""
    out: list[Mapping[str, Any]] = []
    for node in nodes:
        last = out[-1] if out else None
        if (
            last is not None
            and node["type"] == last["type"] == "text"
            and _mark_set(node) == _mark_set(last)
        ):
            out[-1] = {**last, "text": last["text"] + node["text"]}
        else:
            out.append(node)
    return out


def _mark_set(node: Mapping[str, Any]) -> list[str]:
    return sorted(json.dumps(m, sort_keys=True) for m in node.get("marks") or [])


def _resolve(tokens: list[_Token]) -> str:
    """The tokens as Markdown: emphasis as `*`/`**`/`~~` where CommonMark's flanking rules
    let the delimiters open and close where they stand, else as inline HTML tags (`a**:**`
    is no emphasis: a `**` after a letter and before punctuation cannot open)."""
    strings = [_delimiter(t) if isinstance(t, tuple) else t for t in tokens]
    as_html: set[int] = set()
    for i, token in enumerate(tokens):
        if not isinstance(token, tuple) or _MD_MARKS[token[2]["type"]] is None:
            continue
        char = strings[i][0]
        before = _neighbour(strings, tokens, i, char, -1)
        after = _neighbour(strings, tokens, i, char, +1)
        if before == char or after == char or not _flanks(token[0], before, after):
            as_html.add(token[1])
    out = []
    for token, string in zip(tokens, strings, strict=True):
        if isinstance(token, tuple) and token[1] in as_html:
            tag = _HTML_TAGS[token[2]["type"]]
            out.append(f"<{tag}>" if token[0] == "o" else f"</{tag}>")
        else:
            out.append(string)
    return "".join(out)


def _delimiter(token: tuple[str, int, Mapping[str, Any]]) -> str:
    return _open(token[2]) if token[0] == "o" else _close(token[2])


def _neighbour(strings: list[str], tokens: list[_Token], i: int, char: str, step: int) -> str:
    """The character next to delimiter `i` outside its run (delimiters of the same
    character that touch it); "" at either end of the line, or `char` when the run holds
    a delimiter of another pair going the other way (`*a**b*`: a close and an open meet)."""
    kind = tokens[i][0]
    j = i + step
    while 0 <= j < len(strings):
        if strings[j] == "":
            j += step
            continue
        token = tokens[j]
        if isinstance(token, tuple) and strings[j][0] == char and set(strings[j]) == {char}:
            if token[0] != kind:
                return char
            j += step
            continue
        return strings[j][-1] if step < 0 else strings[j][0]
    return ""


def _flanks(kind: str, before: str, after: str) -> bool:
    """CommonMark: `*` opens when left-flanking, closes when right-flanking.  A run that is
    both (punctuation on either side) may pair with another than the one meant (the rule
    of 3), so only one-sided runs count."""
    left = _left_flanking(before, after)
    right = _left_flanking(after, before)
    return left and not right if kind == "o" else right and not left


def _left_flanking(before: str, after: str) -> bool:
    return (
        bool(after)
        and not after.isspace()
        and (not _punct(after) or not before or before.isspace() or _punct(before))
    )


def _punct(char: str) -> bool:
    return not char.isalnum() and not char.isspace()


def _open(mark: Mapping[str, Any]) -> str:
    delimiters = _MD_MARKS[mark["type"]]
    return "[" if delimiters is None else delimiters[0]


def _close(mark: Mapping[str, Any]) -> str:
    delimiters = _MD_MARKS[mark["type"]]
    return _link_close(mark.get("attrs") or {}) if delimiters is None else delimiters[1]
