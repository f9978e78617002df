"""`GET /docs`: Swagger UI over `/openapi.json`, served from the pinned `swagger-ui-py`
package (its bundled Swagger UI 5 build, which reads OpenAPI 3.1), never from a CDN: the
page works offline and runs only the scripts the lock names.

The page is ours; its assets (`/docs/assets/*`) are the package's files. A content
security policy of its own lets the page load exactly those and its one inline script,
by hash (the API's default policy allows nothing).
"""

from __future__ import annotations

import base64
import hashlib

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from syncd.api.operations import operation

# no validator badge: it would send the document to a third-party service
_START = """
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
});
"""
_START_HASH = base64.b64encode(hashlib.sha256(_START.encode()).digest()).decode()
_POLICY = (
    f"default-src 'none'; script-src 'self' 'sha256-{_START_HASH}'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'"
)
_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>syncd API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>{_START}</script>
</body>
</html>
"""


@operation(
    "This API in Swagger UI", responses={200: str}, auth=False, tags=["monitoring"],
    media_type="text/html",
)
async def docs_page(request: Request) -> Response:
    return HTMLResponse(_PAGE, headers={"content-security-policy": _POLICY})


def routes() -> list[BaseRoute]:
    return [
        Route("/docs", docs_page, methods=["GET"]),
        Mount("/docs/assets", StaticFiles(packages=[("swagger_ui", "static")])),
    ]
