"""Liveness and readiness: `/healthz` says the process answers, `/readyz` that it can serve."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.models.monitoring import Live, Ready
from syncd.api.operations import operation


@operation("Liveness", responses={200: Live}, auth=False)
async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@operation(
    "Readiness (database, bus; the AMQP broker and outbox reported)",
    responses={200: Ready, 503: Ready},
    auth=False,
)
async def readyz(request: Request) -> Response:
    services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        await services.store.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    check_bus = getattr(services.bus, "check", None)
    if check_bus is not None:
        checks.update(await check_bus())
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks}
    if services.amqp is not None:
        # reported, not a check: without the broker the server still serves, and the
        # events wait in the outbox (a load balancer must not take the instance out)
        body["amqp"] = await services.amqp.status()
    return JSONResponse(body, status_code=200 if ready else 503)


def routes() -> list[Route]:
    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
