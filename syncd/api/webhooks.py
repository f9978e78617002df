"""REST routes under `/api/webhooks`: webhook endpoints and their delivery log, for the
CRM back end (role service or admin; anyone else gets 403)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.errors import ApiError
from syncd.api.models.note_views import timestamp
from syncd.api.models.webhooks import (
    ENDPOINT_ID_PATTERN,
    MAX_DELIVERY_ID,
    DeliveryId,
    DeliveryList,
    DeliveryQuery,
    Endpoint,
    EndpointChanges,
    EndpointId,
    EndpointList,
    EndpointWithSecret,
    NewEndpoint,
    QueuedDelivery,
)
from syncd.api.operations import ERROR, operation, path_parameter
from syncd.api.requests import authenticate_privileged
from syncd.api.validation import read_body, read_query
from syncd.services.webhooks import ReadOnlyEndpoint, WebhookDispatcher, WebhookEndpoints
from syncd.storage import DeliveryRecord, EndpointRecord

TAGS = ["webhooks"]
path_parameter("endpoint_id", EndpointId)
path_parameter("delivery_id", DeliveryId)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else timestamp(value)


def endpoint_json(record: EndpointRecord, *, secret: bool = False) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "id": record.id,
        "url": record.url,
        "description": record.description,
        "events": list(record.events),
        "enabled": record.enabled,
        "source": record.source,
        "failureStreak": record.failure_streak,
        "disabledAt": _iso(record.disabled_at),
        "disabledReason": record.disabled_reason,
        "previousSecretExpiresAt": _iso(record.previous_secret_until)
        if record.previous_secret
        else None,
        "createdBy": record.created_by,
        "createdAt": timestamp(record.created_at),
        "updatedAt": timestamp(record.updated_at),
    }
    if secret:
        shape["secret"] = record.secret
    return shape


def delivery_json(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": str(record.id),
        "endpointId": record.endpoint_id,
        "eventId": record.event_id,
        "eventType": record.event_type,
        "noteId": record.note_id,
        "status": record.status,
        "attempts": record.attempts,
        "lastResponseCode": record.response_code,
        "latencyMs": record.latency_ms,
        "error": record.error,
        "replayOf": None if record.replay_of is None else str(record.replay_of),
        "createdAt": timestamp(record.created_at),
        "lastAttemptAt": _iso(record.last_attempt_at),
        "finishedAt": _iso(record.finished_at),
    }


def _endpoints(request: Request) -> WebhookEndpoints:
    return request.app.state.services.webhooks


def _dispatcher(request: Request) -> WebhookDispatcher:
    return request.app.state.services.webhook_dispatcher


def _endpoint_id(request: Request) -> str:
    """The path's endpoint id (after the role check); 422 for one no endpoint can have."""
    authenticate_privileged(request)
    endpoint_id: str = request.path_params["endpoint_id"]
    if not re.fullmatch(ENDPOINT_ID_PATTERN, endpoint_id):
        raise ApiError(422, f"webhook endpoint id must match {ENDPOINT_ID_PATTERN}")
    return endpoint_id


async def _endpoint(request: Request, endpoint_id: str | None = None) -> EndpointRecord:
    """The path's endpoint; 404 if there is none. Inputs are checked before (a 422 for
    a bad body or query comes first, whether the endpoint exists or not)."""
    endpoint_id = endpoint_id or _endpoint_id(request)
    found = await _dispatcher(request).store.get_endpoint(endpoint_id)
    if found is None:
        raise ApiError(404, "webhook endpoint not found")
    return found


def _read_only(exc: ReadOnlyEndpoint) -> ApiError:
    return ApiError(409, str(exc))


@operation(
    "Register a webhook endpoint (role service or admin); the answer holds its signing "
    "secret, shown only this once",
    body=NewEndpoint,
    responses={201: EndpointWithSecret, 403: ERROR, 422: ERROR},
    tags=TAGS,
)
async def create_endpoint(request: Request) -> Response:
    user_id = authenticate_privileged(request).user_id
    body = await read_body(request, NewEndpoint)
    record = await _endpoints(request).create(body.url, body.events, body.description, user_id)
    return JSONResponse(endpoint_json(record, secret=True), status_code=201)


@operation(
    "Every webhook endpoint, registered or configured (role service or admin)",
    responses={200: EndpointList, 403: ERROR},
    tags=TAGS,
)
async def list_endpoints(request: Request) -> Response:
    authenticate_privileged(request)
    records = await _dispatcher(request).store.list_endpoints()
    return JSONResponse({"endpoints": [endpoint_json(r) for r in records]})


@operation(
    "One webhook endpoint (role service or admin)",
    responses={200: Endpoint, 403: ERROR, 404: ERROR, 422: ERROR},
    tags=TAGS,
)
async def get_endpoint(request: Request) -> Response:
    return JSONResponse(endpoint_json(await _endpoint(request)))


@operation(
    "Change a webhook endpoint's URL, events, description or `enabled` (role service or "
    "admin); an endpoint configured by environment takes `enabled` only (409)",
    body=EndpointChanges,
    responses={200: Endpoint, 403: ERROR, 404: ERROR, 409: ERROR, 422: ERROR},
    tags=TAGS,
)
async def update_endpoint(request: Request) -> Response:
    endpoint_id = _endpoint_id(request)
    body = await read_body(request, EndpointChanges)
    endpoint = await _endpoint(request, endpoint_id)
    try:
        updated = await _endpoints(request).update(
            endpoint,
            url=body.url,
            events=body.events,
            description=body.description,
            enabled=body.enabled,
        )
    except ReadOnlyEndpoint as exc:
        raise _read_only(exc) from None
    if updated is None:
        raise ApiError(404, "webhook endpoint not found")
    return JSONResponse(endpoint_json(updated))


@operation(
    "Delete a webhook endpoint and its delivery log (role service or admin)",
    responses={204: None, 403: ERROR, 404: ERROR, 409: ERROR, 422: ERROR},
    tags=TAGS,
)
async def delete_endpoint(request: Request) -> Response:
    endpoint = await _endpoint(request)
    try:
        deleted = await _endpoints(request).delete(endpoint)
    except ReadOnlyEndpoint as exc:
        raise _read_only(exc) from None
    if not deleted:
        raise ApiError(404, "webhook endpoint not found")
    return Response(status_code=204)


@operation(
    "Give a webhook endpoint a new signing secret (role service or admin), shown only in "
    "this answer; the previous one keeps signing beside it (two signatures in "
    "`webhook-signature`) until `previousSecretExpiresAt` (SYNCD_WEBHOOK_SECRET_GRACE)",
    responses={200: EndpointWithSecret, 403: ERROR, 404: ERROR, 409: ERROR, 422: ERROR},
    tags=TAGS,
)
async def rotate_secret(request: Request) -> Response:
    endpoint = await _endpoint(request)
    try:
        rotated = await _endpoints(request).rotate_secret(endpoint)
    except ReadOnlyEndpoint as exc:
        raise _read_only(exc) from None
    if rotated is None:
        raise ApiError(404, "webhook endpoint not found")
    return JSONResponse(endpoint_json(rotated, secret=True))


@operation(
    "Send a `webhook.test` event to the endpoint (role service or admin); answers its "
    "delivery, to follow in the delivery log, and its queued job's `jobId`",
    responses={201: QueuedDelivery, 403: ERROR, 404: ERROR, 409: ERROR, 422: ERROR},
    tags=TAGS,
)
async def send_test(request: Request) -> Response:
    endpoint = await _endpoint(request)
    if not endpoint.enabled:
        raise ApiError(409, "the endpoint is disabled: enable it first")
    delivery, job_id = await _dispatcher(request).send_test(endpoint)
    return JSONResponse({**delivery_json(delivery), "jobId": job_id}, status_code=201)


@operation(
    "The endpoint's delivery log, newest first (role service or admin); `nextCursor` "
    "(null on the last page) as `cursor` gives the next page",
    query=DeliveryQuery,
    responses={200: DeliveryList, 403: ERROR, 404: ERROR, 422: ERROR},
    tags=TAGS,
)
async def list_deliveries(request: Request) -> Response:
    endpoint_id = _endpoint_id(request)
    params = read_query(request, DeliveryQuery)
    before = int(params.cursor) if params.cursor is not None else None
    if before is not None and before > MAX_DELIVERY_ID:
        raise ApiError(422, "cursor is not one this server gave")
    endpoint = await _endpoint(request, endpoint_id)
    records = await _dispatcher(request).store.list_deliveries(
        endpoint.id, limit=params.limit + 1, before=before
    )
    page = records[: params.limit]
    more = len(records) > params.limit
    return JSONResponse(
        {
            "deliveries": [delivery_json(r) for r in page],
            "nextCursor": str(page[-1].id) if more else None,
        }
    )


@operation(
    "Deliver a logged event again, as a new delivery with its own attempts (same event "
    "id and body) (role service or admin); answers it with its queued job's `jobId`",
    responses={201: QueuedDelivery, 403: ERROR, 404: ERROR, 409: ERROR, 422: ERROR},
    tags=TAGS,
)
async def replay_delivery(request: Request) -> Response:
    endpoint_id = _endpoint_id(request)
    delivery_id = request.path_params["delivery_id"]
    if not 1 <= delivery_id <= MAX_DELIVERY_ID:
        raise ApiError(422, f"the delivery id must be from 1 to {MAX_DELIVERY_ID}")
    endpoint = await _endpoint(request, endpoint_id)
    dispatcher = _dispatcher(request)
    delivery = await dispatcher.store.get_delivery(delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint.id:
        raise ApiError(404, "delivery not found")
    if not endpoint.enabled:
        raise ApiError(409, "the endpoint is disabled: enable it first")
    again, job_id = await dispatcher.replay(delivery)
    return JSONResponse({**delivery_json(again), "jobId": job_id}, status_code=201)


def routes() -> list[Route]:
    base = "/api/webhooks"
    one = base + "/{endpoint_id}"
    return [
        Route(base, create_endpoint, methods=["POST"]),
        Route(base, list_endpoints, methods=["GET"]),
        Route(one, get_endpoint, methods=["GET"]),
        Route(one, update_endpoint, methods=["PATCH"]),
        Route(one, delete_endpoint, methods=["DELETE"]),
        Route(one + "/rotate-secret", rotate_secret, methods=["POST"]),
        Route(one + "/test", send_test, methods=["POST"]),
        Route(one + "/deliveries", list_deliveries, methods=["GET"]),
        Route(one + "/deliveries/{delivery_id:int}/replay", replay_delivery, methods=["POST"]),
    ]
