"""ASGI middleware: each an ASGI app wrapping an ASGI app (Starlette's idiom).

Order in `create_app`, outermost first: HTTP metrics, security headers, CORS, REST rate
limits, then the WebSocket guard (metrics and limits of sync connections).
"""

from syncd.api.middleware.http_metrics import HttpMetricsMiddleware
from syncd.api.middleware.rate_limit import RestRateLimitMiddleware
from syncd.api.middleware.security import SecurityHeadersMiddleware
from syncd.api.middleware.websocket_guard import WebSocketGuardMiddleware

__all__ = [
    "HttpMetricsMiddleware",
    "RestRateLimitMiddleware",
    "SecurityHeadersMiddleware",
    "WebSocketGuardMiddleware",
]
