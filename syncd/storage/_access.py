"""Read and write transactions over an engine, for the stores that sit beside `Store`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._engine import write_lock, writer
from ._errors import translate_errors


class EngineStore:
    """Base of the small stores (versions, refresh tokens): each method one transaction,
    errors translated to `StorageError` / `StorageUnavailable` as `Store` does."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._write_lock = write_lock(engine)

    async def close(self) -> None:
        """Dispose the engine's pool (the owner of the engine calls this)."""
        await self._engine.dispose()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        with translate_errors():
            async with self._engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        if self._write_lock is None:
            with translate_errors():
                async with self._writer.begin() as conn:
                    yield conn
            return
        async with self._write_lock:
            with translate_errors():
                async with self._writer.begin() as conn:
                    yield conn
