"""`syncd serve | migrate | token`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn

from syncd.services import redaction
from syncd.settings import Settings, SettingsError


def server_config(settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for `syncd serve` (also what bench/connmem.py serves)."""
    from syncd.app import FrontDoor, create_app
    from syncd.transport.lean_protocol import LeanWebSocketProtocol

    app = FrontDoor(create_app(settings))
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # the sans-I/O implementation measured fastest (here without the handshake it would
        # keep for life); frames over the limit are refused by syncd itself (close 1009
        # with a reason), so uvicorn's own cap sits just above it; a frame over that cap
        # is refused at its header and closed cleanly by LeanWebSocketProtocol
        ws=LeanWebSocketProtocol,
        ws_max_size=settings.limits.max_message_bytes + 1024,
        ws_per_message_deflate=False,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        # httptools with the lean handshake of a plain sync connection (lean_upgrade)
        http=_http_protocol(),
        lifespan="on",
        interface="asgi3",  # FrontDoor returns coroutines from a plain __call__
        timeout_graceful_shutdown=15,
        proxy_headers=True,
    )


def _http_protocol() -> type[asyncio.Protocol] | str:
    """`LeanHttpToolsProtocol` when httptools is installed, else uvicorn's h11 protocol."""
    if importlib.util.find_spec("httptools") is None:
        return "h11"
    from syncd.transport.lean_upgrade import LeanHttpToolsProtocol

    return LeanHttpToolsProtocol


def _serve(settings: Settings) -> int:
    if settings.amqp.enabled:
        from syncd.services.amqp import BrokerUnusable, check_broker

        try:
            asyncio.run(check_broker(settings.amqp))
        except BrokerUnusable as exc:
            # one line, no traceback: the operator fixes RABBITMQ_URL or the broker
            print(f"syncd: not starting: {exc}", file=sys.stderr, flush=True)
            return 2
    config = server_config(settings)
    _print_sign_in_link(settings)
    # uvicorn configured its loggers in Config(); mask tokens (e.g. `?token=` in the
    # WebSocket handshake line) before anything is logged
    redaction.install()
    server = _GracefulServer(config)
    server.run()
    return 0 if server.started else 1


def _print_sign_in_link(settings: Settings) -> None:
    """Embedded with a generated secret (development): a link that signs the local user in,
    as Jupyter prints its token URL."""
    from syncd.auth.signin import local_user, should_print_link, sign_in_link

    if should_print_link(settings):
        user = local_user()
        link = sign_in_link(settings, user, name=user)
        print(f"syncd: open the web app as {user} (the link works once):\n    {link}", flush=True)


class _GracefulServer(uvicorn.Server):
    """Closes every sync connection with 1001 (rooms then store their state) before
    uvicorn's own shutdown, which would close them with 1012 instead."""

    _closing = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self.config.loaded_app if self.config.loaded else None
        services = getattr(getattr(getattr(app, "app", app), "state", None), "services", None)
        if self._closing or services is None:
            super().handle_exit(sig, frame)
            return
        self._closing = True
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(lambda: loop.create_task(self._close_then_exit(sig, frame)))

    async def _close_then_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self.config.loaded_app
        services = getattr(app, "app", app).state.services
        try:
            await asyncio.wait_for(services.sync.shutdown(), timeout=10)
        except Exception:
            logging.getLogger(__name__).exception("closing connections at shutdown failed")
        finally:
            super().handle_exit(sig, frame)


def _worker(settings: Settings) -> int:
    from syncd.wiring import run_worker_process

    try:
        asyncio.run(run_worker_process(settings))
    except (RuntimeError, SettingsError) as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 2
    return 0


def _migrate(settings: Settings) -> int:
    from syncd.storage import migrate_database

    asyncio.run(migrate_database(settings.database_url))
    print(f"database at {settings.database_url.split('@')[-1]} is up to date")
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from syncd.auth import mint_token
    from syncd.auth.configured import jwt_secret

    if args.link:
        from syncd.auth.signin import sign_in_link

        print(
            sign_in_link(
                settings,
                args.user,
                name=args.name,
                email=args.email,
                roles=args.role or [],
                ttl=args.ttl,
            )
        )
        return 0
    token = mint_token(
        jwt_secret(settings),
        args.user,
        name=args.name,
        email=args.email,
        roles=args.role or [],
        ttl_seconds=args.ttl,
    )
    print(token)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncd", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server (embedded default: no config)")
    serve.add_argument("--host", help="bind address (env HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (env PORT, default 3001)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    commands.add_parser("migrate", help="apply database migrations (DATABASE_URL)")
    worker = commands.add_parser("worker", help="run background jobs only (scaled mode)")
    worker.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    token = commands.add_parser("token", help="print a signed access token for development")
    token.add_argument("user", help="user id (the sub claim)")
    token.add_argument("--name")
    token.add_argument("--email")
    token.add_argument("--role", action="append", help="role, e.g. admin or service; repeatable")
    token.add_argument("--ttl", type=float, default=24 * 3600.0, help="lifetime in seconds")
    token.add_argument(
        "--link",
        action="store_true",
        help="print a sign-in link to the web app instead (a one-use refresh token; --ttl: "
        "how long the link may be used)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return 2
    overrides = {
        key: value
        for key, value in {
            "host": getattr(args, "host", None),
            "port": getattr(args, "port", None),
            "log_level": getattr(args, "log_level", None),
        }.items()
        if value is not None
    }
    settings = settings.with_overrides(**overrides)
    # `token` prints a token and nothing else (it is used as `$(syncd token ...)`): the
    # INFO lines of libraries it loads (Alembic's plugin set-up) are noise there
    level = "WARNING" if args.command == "token" else settings.log_level.upper()
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "serve":
        return _serve(settings)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "worker":
        return _worker(settings)
    return _token(settings, args)


if __name__ == "__main__":
    raise SystemExit(main())
