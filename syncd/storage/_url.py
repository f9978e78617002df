"""Database URLs as users write them, turned into async-driver SQLAlchemy URLs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

_SQLITE_SCHEMES = {"sqlite", "sqlite+aiosqlite"}
_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+asyncpg", "postgres+asyncpg"}


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A normalised URL: `dialect` is "sqlite" or "postgresql"."""

    url: URL
    dialect: str

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.url.database or "") if self.dialect == "sqlite" else None

    def __str__(self) -> str:
        return self.url.render_as_string(hide_password=True)


def parse_database_url(raw: str) -> DatabaseURL:
    """Map `sqlite://` and `postgres(ql)://` URLs onto aiosqlite and asyncpg.

    Relative SQLite paths are resolved against the current directory now, so
    a later `chdir` cannot move the database. In-memory SQLite is refused: each
    pooled connection would see its own empty database.
    """
    try:
        url = make_url(raw)
    except ArgumentError as error:
        raise ValueError(f"not a database URL: {raw!r}") from error
    scheme = url.drivername.lower()
    if scheme in _SQLITE_SCHEMES:
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise ValueError("in-memory SQLite is not supported; give a file path")
        path = Path(database).expanduser().resolve()
        return DatabaseURL(url.set(drivername="sqlite+aiosqlite", database=str(path)), "sqlite")
    if scheme in _POSTGRES_SCHEMES:
        query = dict(url.query)
        if "sslmode" in query:  # libpq spelling; asyncpg calls it `ssl`
            query["ssl"] = query.pop("sslmode")
        return DatabaseURL(url.set(drivername="postgresql+asyncpg", query=query), "postgresql")
    raise ValueError(f"unsupported database URL scheme {url.drivername!r} (sqlite or postgresql)")
