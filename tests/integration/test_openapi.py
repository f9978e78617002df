"""`/openapi.json` against the live server: schemathesis generates requests for every
operation (valid and invalid ones), with a valid token; no response may be a 5xx and every
response must match its documented status, content type, headers and schema."""

from __future__ import annotations

import asyncio
import sys

from openapi_spec_validator import validate

from tests.support.fixtures import StartServer
from tests.support.server import make_token

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
# Bounded so the run takes seconds: examples per operation, and a fixed seed so CI is
# reproducible (change it locally to explore).
MAX_EXAMPLES = "20"
SEED = "20241202"


async def test_the_document_is_valid_openapi_3_1(syncd) -> None:
    async with syncd.client() as api:
        response = await api.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)
    versions = document["paths"]["/api/collaborative-notes/{note_id}/versions/{number}/restore"]
    assert versions["post"]["parameters"][1]["schema"]["type"] == "integer"


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    start_syncd: StartServer,
) -> None:
    # the service role is exempt from REST limits; connection limits do not apply to REST
    server = await start_syncd(env={"SYNCD_LOG_LEVEL": "warning"})
    token = make_token("crm", roles=["service"])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from schemathesis.cli import schemathesis; schemathesis()",
        "run",
        f"{server.http_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--no-shrink",
        "--workers",
        "2",
        "--request-timeout",
        "15",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-6000:]
    assert "Traceback" not in server.log_tail(400), server.log_tail(80)
