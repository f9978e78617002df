"""The jobs admin (role service or admin): one job's state, the job list by status and
queue, a page at a time, and retry / cancel. Times are ISO 8601, as everywhere else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.api.cursors import decode_epoch_cursor, encode_epoch_cursor
from syncd.api.errors import ApiError
from syncd.api.models.monitoring import Job, JobId, JobList, JobListQuery
from syncd.api.operations import ERROR, operation, path_parameter
from syncd.api.requests import authenticate_privileged
from syncd.api.validation import read_query
from syncd.jobs import JobConflict, JobInfo, JobQuery, Jobs, JobStatus
from syncd.jobs.policy import valid_job_id

TAGS = ["monitoring"]
path_parameter("job_id", JobId)


def _jobs(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.services.collab.jobs
    return jobs


def _time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def job_json(info: JobInfo) -> dict[str, Any]:
    """The shape of `Job` (`syncd.api.models.monitoring`)."""
    return {
        "id": info.id,
        "function": info.function,
        "queue": info.queue,
        "status": info.status.value,
        "attempts": info.attempts,
        "maxAttempts": info.max_attempts,
        "enqueuedAt": _time(info.enqueued_at),
        "startedAt": _time(info.started_at),
        "finishedAt": _time(info.finished_at),
        "nextAttemptAt": _time(info.next_attempt_at),
        "error": info.error,
        "result": info.result,
    }


def _job_id(request: Request) -> str:
    job_id: str = request.path_params["job_id"]
    if not valid_job_id(job_id):
        raise ApiError(404, "job not found")
    return job_id


@operation(
    "One job's status, attempts, times, error and result (role service or admin)",
    responses={200: Job, 403: ERROR, 404: ERROR},
    tags=TAGS,
)
async def job_status(request: Request) -> Response:
    authenticate_privileged(request)
    info = await _jobs(request).info(_job_id(request))
    if info is None:
        raise ApiError(404, "job not found")
    return JSONResponse(job_json(info))


@operation(
    "The jobs the queue still knows (finished ones for their retention), newest first, "
    "of one status and queue if given; `nextCursor` (null on the last page) as `cursor` "
    "gives the next page (role service or admin)",
    query=JobListQuery,
    responses={200: JobList, 403: ERROR},
    tags=TAGS,
)
async def list_jobs(request: Request) -> Response:
    authenticate_privileged(request)
    params = read_query(request, JobListQuery)
    query = JobQuery(
        limit=params.limit + 1,  # one more than asked: is there a next page?
        status=JobStatus(params.status) if params.status else None,
        queue=params.queue,
        after=decode_epoch_cursor(params.cursor) if params.cursor is not None else None,
    )
    found = await _jobs(request).list_jobs(query)
    page = found[: params.limit]
    more = len(found) > params.limit
    return JSONResponse(
        {
            "jobs": [job_json(info) for info in page],
            "nextCursor": encode_epoch_cursor(page[-1].enqueued_at, page[-1].id) if more else None,
        }
    )


async def _change(request: Request, change: Callable[[str], Awaitable[JobInfo | None]]) -> Response:
    """Retry or cancel the job of the path: the job after it, 404 unknown, 409 conflict."""
    try:
        info = await change(_job_id(request))
    except JobConflict as exc:
        raise ApiError(409, f"{exc} (job {exc.job_id} is {exc.status})") from None
    if info is None:
        raise ApiError(404, "job not found")
    return JSONResponse(job_json(info))


@operation(
    "Queue a failed or aborted job again, with its arguments and a fresh count of attempts "
    "(role service or admin); 409 in any other state",
    responses={200: Job, 403: ERROR, 404: ERROR, 409: ERROR},
    tags=TAGS,
)
async def retry_job(request: Request) -> Response:
    authenticate_privileged(request)
    return await _change(request, _jobs(request).retry)


@operation(
    "Abort a queued, scheduled or running job (a running one is cancelled on the instance "
    "that runs it); role service or admin; 409 once it has finished",
    responses={200: Job, 403: ERROR, 404: ERROR, 409: ERROR},
    tags=TAGS,
)
async def cancel_job(request: Request) -> Response:
    reason = f"cancelled by {authenticate_privileged(request).user_id}"
    return await _change(request, lambda job_id: _jobs(request).cancel(job_id, reason))


def routes() -> list[Route]:
    return [
        Route("/api/jobs", list_jobs, methods=["GET"]),
        Route("/api/jobs/{job_id}", job_status, methods=["GET"]),
        Route("/api/jobs/{job_id}/retry", retry_job, methods=["POST"]),
        Route("/api/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
    ]
