"""ASGI middleware: each an ASGI app wrapping an ASGI app (Starlette's idiom).

Order in `create_app`, outermost first: HTTP metrics, security headers, CORS, REST rate
limits, URL guard (so refused requests are still counted and limited). Sync WebSockets do
not pass through them (see `syncd.app.FrontDoor`): the sync endpoint keeps its own frame
metrics and limits.
"""

from syncd.api.middleware.http_metrics import HttpMetricsMiddleware
from syncd.api.middleware.rate_limit import RestRateLimitMiddleware
from syncd.api.middleware.security import SecurityHeadersMiddleware
from syncd.api.middleware.url_guard import UrlGuardMiddleware

__all__ = [
    "HttpMetricsMiddleware",
    "RestRateLimitMiddleware",
    "SecurityHeadersMiddleware",
    "UrlGuardMiddleware",
]
