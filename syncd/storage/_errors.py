"""Storage errors, and the one place that maps driver errors onto them.

Callers above storage never see SQLAlchemy, asyncpg or sqlite3 exceptions:
`StorageUnavailable` means "try again later" (the WebSocket layer closes with
1013), any other `StorageError` is a bug or bad data.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc


class StorageError(Exception):
    """Base of every error raised by `syncd.storage`."""


class StorageUnavailable(StorageError):
    """The database cannot be reached or is not accepting work right now."""


class StorageRejected(StorageError):
    """The database refused a value of the statement (SQLSTATE class 22, "data exception":
    a NUL byte in text, an integer out of range, text the encoding cannot hold). The API
    checks input so that none gets here; one that does is a bad value, not an outage."""


class NoteExists(StorageError):
    """A note with this id already exists."""


class NoteNotFound(StorageError):
    """No such note (HTTP 404, close 4404): unknown, deleted, or doc state written for
    a note that does not exist. The one not-found error of every layer."""


# SQLSTATE classes that mean "the server, not the statement, is the problem":
# 08 connection exception, 53 insufficient resources, 57 operator intervention
# (admin shutdown, cannot connect now), 58 system error.
_UNAVAILABLE_SQLSTATES = ("08", "53", "57", "58")
# SQLSTATE class 22: the statement's values, not the server (asyncpg also reports values
# it cannot encode, e.g. an integer beyond the column's type, as 22000)
_DATA_EXCEPTION = "22"
# SQLite reports these as OperationalError too, but they are bugs, not outages.
_SQLITE_BUGS = ("no such ", "syntax error", "has no column", "already exists")


def _is_unavailable(error: sa_exc.DBAPIError) -> bool:
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None) or ""
    if sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
        return True
    if isinstance(error, sa_exc.InterfaceError):
        return True
    if isinstance(error, sa_exc.OperationalError):
        return not _is_sqlite_bug(str(error.orig))
    return False


def _is_sqlite_bug(message: str) -> bool:
    return any(bug in message.lower() for bug in _SQLITE_BUGS)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise driver and connection errors as `StorageError` subclasses."""
    try:
        yield
    except StorageError:
        raise
    except sa_exc.DBAPIError as error:
        if _is_unavailable(error):
            raise StorageUnavailable(str(error.orig)) from error
        if (getattr(error.orig, "sqlstate", None) or "").startswith(_DATA_EXCEPTION):
            raise StorageRejected(str(error.orig)) from error
        raise StorageError(str(error.orig)) from error
    except UnicodeEncodeError as error:  # an unpaired surrogate, refused by the driver
        raise StorageRejected(f"text not encodable: {error.reason}") from error
    except sa_exc.TimeoutError as error:  # pool exhausted
        raise StorageUnavailable(str(error)) from error
    except sa_exc.SQLAlchemyError as error:
        raise StorageError(str(error)) from error
    except sqlite3.Error as error:  # the embedded log's plain-sqlite3 appender: same rules
        if isinstance(error, sqlite3.InterfaceError) or (
            isinstance(error, sqlite3.OperationalError) and not _is_sqlite_bug(str(error))
        ):
            raise StorageUnavailable(str(error)) from error
        raise StorageError(str(error)) from error
    except (OSError, TimeoutError) as error:  # refused, unreachable, connect timeout
        raise StorageUnavailable(f"{type(error).__name__}: {error}") from error
