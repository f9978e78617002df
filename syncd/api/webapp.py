"""The web app at `/`: the reference browser client, served from built assets shipped in
the package (`syncd/webapp/static/`, built from `web/` by `scripts/build-web.sh`; data,
no code).

Only `/` and `/assets/...` are served here, so the API, `/ws`, `/socket.io`, `/healthz` and
every unknown path keep their own answers (JSON 404s stay JSON). The app routes with the
URL fragment (`#/notes/ID`), which never reaches the server: the sign-in link's token in
`#signin=` is not in any access log either.
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from syncd.api.operations import operation

STATIC = Path(__file__).resolve().parents[1] / "webapp" / "static"

#: the page loads only its own script and style, and talks only to this origin (same-origin
#: `connect-src 'self'` covers ws:// and wss:// too); y-prosemirror styles selections inline
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>syncd: web app not built</title></head>
<body style="font: 16px/1.5 system-ui, sans-serif; max-width: 40em; margin: 3em auto">
<h1>syncd is running; its web app is not built</h1>
<p>The API, the WebSocket endpoint and Socket.IO work. To serve the web app here, build
it once from the lockfile (needs Node 20 and npm), then reload this page:</p>
<pre>bash scripts/build-web.sh</pre>
<p><code>bash scripts/serve.sh</code> does this by itself when the assets are missing.</p>
</body></html>
"""


def built(static: Path = STATIC) -> bool:
    """Whether the assets are there (`index.html` is written last by the build)."""
    return (static / "index.html").is_file() and (static / "assets").is_dir()


def routes(static: Path = STATIC) -> list[BaseRoute]:
    @operation(
        "The web app (or, before it is built, how to build it)",
        responses={200: str},
        auth=False,
        tags=["web app"],
        media_type="text/html",
    )
    async def index(request: Request) -> Response:
        if not built(static):
            # 200: a person reads this page; monitoring reads /healthz and /readyz
            return HTMLResponse(NOT_BUILT, headers={"cache-control": "no-store"})
        return FileResponse(
            static / "index.html",
            media_type="text/html",
            headers={"content-security-policy": CSP, "cache-control": "no-cache"},
        )

    assets = StaticFiles(directory=static / "assets", check_dir=False)

    async def asset(scope: Scope, receive: Receive, send: Send) -> None:
        if not built(static):
            raise HTTPException(404)  # answered as JSON, like any unknown path
        await assets(scope, receive, send)

    return [Route("/", index, methods=["GET", "HEAD"]), Mount("/assets", app=asset)]
