"""ASGI middleware: each an ASGI app wrapping an ASGI app (Starlette's idiom).

Order in `create_app`, outermost first: HTTP metrics, security headers, CORS, REST rate
limits. Sync WebSockets do not pass through them (see `syncd.app.FrontDoor`): the sync
endpoint keeps its own frame metrics and limits.
"""

from syncd.api.middleware.http_metrics import HttpMetricsMiddleware
from syncd.api.middleware.rate_limit import RestRateLimitMiddleware
from syncd.api.middleware.security import SecurityHeadersMiddleware

__all__ = [
    "HttpMetricsMiddleware",
    "RestRateLimitMiddleware",
    "SecurityHeadersMiddleware",
]
