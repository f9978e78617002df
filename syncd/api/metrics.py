"""`GET /metrics`: the Prometheus text exposition (all worker processes when
`PROMETHEUS_MULTIPROC_DIR` is set)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncd import metrics
from syncd.api.operations import operation


@operation(
    "Prometheus metrics (text exposition format)",
    responses={200: str},
    auth=False,
    tags=["monitoring"],
    media_type="text/plain",
)
async def metrics_text(request: Request) -> Response:
    # in slices of the loop: a scrape is several ms of CPU (see `render_in_slices`)
    body, content_type = await metrics.render_in_slices(
        request.app.state.services.settings.metrics_dir
    )
    return Response(body, media_type=content_type)


def routes() -> list[Route]:
    return [Route("/metrics", metrics_text, methods=["GET"])]
