"""A generated signing secret for the zero-configuration start: never an open server."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_secret(data_dir: Path, name: str) -> str:
    """Read `data_dir/name`, creating it (mode 0600, 256 random bits) on first use.

    Created with O_EXCL so two processes starting at once end up with the same secret.
    """
    path = data_dir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if not value:
            raise RuntimeError(f"secret file {path} is empty; delete it to regenerate") from None
        return value
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
