"""What a notification e-mail says: a plain-text part and an HTML part with a link to the
note in the web app.

Everything in the HTML part that comes from users (note titles, messages, names) is
escaped, never interpreted: a title like `<img src=x onerror=...>` reaches the reader as
text. The only markup is this module's own, and the only link is built here from the
configured web app address and the note id (percent-encoded).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import quote

from syncd.storage import NotificationRecord


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str


def note_link(app_url: str, note_id: str) -> str:
    """The web app's route of a note (`#/notes/<id>`, as its list links to it)."""
    return f"{app_url.rstrip('/')}/#/notes/{quote(note_id, safe='')}"


def one_line(text: str) -> str:
    """White space (line breaks included) folded to single spaces: a header value."""
    return " ".join(text.split())


def notification_email(record: NotificationRecord, app_url: str) -> Email:
    """The e-mail of a notification; `app_url`: where the web app is (the first origin of
    `FRONTEND_URL`, else this server's own page)."""
    link = note_link(app_url, record.note_id) if record.note_id else None
    note_title = record.data.get("noteTitle")
    shown = one_line(note_title) if isinstance(note_title, str) else ""
    label = f"Open “{shown}”" if shown else "Open the note"
    text_lines = [record.title]
    if record.message:
        text_lines += ["", record.message]
    if link is not None:
        text_lines += ["", f"{label}: {link}"]
    text_lines += ["", f"(syncd notification {record.id})"]
    parts = [f"<p><strong>{html.escape(record.title)}</strong></p>"]
    if record.message:
        lines = html.escape(record.message).splitlines()
        parts.append(f"<p>{'<br>'.join(lines)}</p>")
    if link is not None:
        parts.append(f'<p><a href="{html.escape(link, quote=True)}">{html.escape(label)}</a></p>')
    parts.append(
        f'<p style="color:#666;font-size:12px">syncd notification {html.escape(record.id)}</p>'
    )
    body = "\n".join(parts)
    document = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        f"<body>\n{body}\n</body></html>\n"
    )
    return Email(subject=one_line(record.title), text="\n".join(text_lines), html=document)
