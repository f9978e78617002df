"""Storage: notes, users and doc state over SQLAlchemy Core (aiosqlite / asyncpg).

Open one with `open_store(url)`; `migrate_database(url)` is `syncd migrate`.
Nothing here imports other syncd layers or a web framework.
"""

from ._errors import (
    NoteExists,
    NoteNotFound,
    StorageError,
    StorageRejected,
    StorageUnavailable,
)
from ._url import DatabaseURL, parse_database_url
from .amqp_outbox import OutboxRow, SqlOutbox
from .migrate import migrate_database
from .notifications import NewNotification, NotificationRecord, NotificationStore
from .records import (
    EMPTY_METADATA,
    EMPTY_PERMISSIONS,
    UNSET,
    NoteAccess,
    NoteMetadata,
    NoteRecord,
    Permissions,
    Snapshot,
    Unset,
    UserRecord,
)
from .sessions import SessionActivity, SessionRecord, SessionStore
from .store import Store, open_store
from .tokens import Rotation, SqlRefreshRecords
from .versions import VersionRecord, VersionStore
from .webhooks import DeliveryRecord, EndpointRecord, NewDelivery, WebhookStore

__all__ = [
    "EMPTY_METADATA",
    "EMPTY_PERMISSIONS",
    "UNSET",
    "DatabaseURL",
    "DeliveryRecord",
    "EndpointRecord",
    "NewDelivery",
    "NewNotification",
    "NoteAccess",
    "NoteExists",
    "NoteMetadata",
    "NoteNotFound",
    "NoteRecord",
    "NotificationRecord",
    "NotificationStore",
    "OutboxRow",
    "Permissions",
    "Rotation",
    "SessionActivity",
    "SessionRecord",
    "SessionStore",
    "Snapshot",
    "SqlOutbox",
    "SqlRefreshRecords",
    "StorageError",
    "StorageRejected",
    "StorageUnavailable",
    "Store",
    "Unset",
    "UserRecord",
    "VersionRecord",
    "VersionStore",
    "WebhookStore",
    "migrate_database",
    "open_store",
    "parse_database_url",
]
