"""A Snowflake wire-protocol emulator for the tests: fakesnow's server app,
wrapped so that the Rust connector (snowflake-connector-rs) can talk to it.

fakesnow answers as Snowflake does for its Python connector; the Rust one
differs in three ways, which this wrapper bridges:
- it reads only JSON rowsets, so Arrow rowsets (`rowsetBase64`) are
  re-encoded as Snowflake JSON rowsets: booleans as "1"/"0", dates as days
  since the epoch, timestamps as seconds.fraction, decimals with their scale;
- it may log in without SESSION_PARAMETERS, which fakesnow requires;
- it expects `data.queryId` on error responses.
It also makes fakesnow accept, as no-ops, the account-level statements of
sql/snowflake/setup.sql that it cannot run (roles, warehouses, grants), and
creates the temporary view or table of an incremental model
(`create or replace temporary view MART.x__dbt_tmp`, as dbt-snowflake names
it) as an ordinary one: fakesnow keeps temporary objects in DuckDB's temp
catalog, where a schema-qualified name does not resolve. The runner drops it
after the merge either way.

Usage: python snowflake_emulator.py PORT   (listens on 127.0.0.1)
"""

from __future__ import annotations

import base64
import datetime
import decimal
import gzip
import json
import re
import sys
import uuid

import pyarrow as pa
import uvicorn
from fakesnow.server import app as fakesnow_app

# Statements fakesnow cannot parse; Snowflake runs them, the emulator skips them.
NOP_STATEMENTS = [r"^\s*CREATE\s+(ROLE|WAREHOUSE)\b", r"^\s*GRANT\b"]
EPOCH = datetime.date(1970, 1, 1)
QUALIFIED_TEMPORARY = re.compile(
    r"^(\s*create\s+or\s+replace\s+)temporary\s+((?:view|table)\s+\w+\.)", re.IGNORECASE
)


def json_cell(value: object, logical_type: str, scale: int) -> str | None:
    if value is None:
        return None
    if logical_type == "BOOLEAN":
        return "1" if value else "0"
    if logical_type == "DATE":
        return str((value - EPOCH).days)
    if logical_type.startswith("TIMESTAMP"):
        # fakesnow sends timestamps as {epoch, fraction (ns)} structs
        if value.get("epoch") is None:
            return None
        return f"{value['epoch']}.{value['fraction']:09d}"
    if logical_type == "FIXED" and scale > 0:
        return f"{decimal.Decimal(value):.{scale}f}"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def arrow_to_json_rowset(encoded: str) -> list[list[str | None]]:
    if not encoded:
        return []
    table = pa.ipc.open_stream(base64.b64decode(encoded)).read_all()
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        logical_type = meta.get("logicalType", "TEXT")
        scale = int(meta.get("scale", "0"))
        columns.append([json_cell(v, logical_type, scale) for v in column.to_pylist()])
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def rewrite_login(body: bytes) -> bytes:
    request = json.loads(body)
    params = request.setdefault("data", {}).setdefault("SESSION_PARAMETERS", {})
    params.setdefault("nop_regexes", NOP_STATEMENTS)
    return json.dumps(request).encode()


def rewrite_query(body: bytes) -> bytes:
    request = json.loads(body)
    request["sqlText"] = QUALIFIED_TEMPORARY.sub(r"\1\2", request.get("sqlText", ""))
    return json.dumps(request).encode()


def rewrite_query_response(body: bytes) -> bytes:
    response = json.loads(body)
    data = response.get("data") or {}
    if response.get("success") is False:
        data.setdefault("queryId", str(uuid.uuid4()))
        response["data"] = data
    elif data.get("queryResultFormat") == "arrow":
        data["rowset"] = arrow_to_json_rowset(data.pop("rowsetBase64", ""))
        data["queryResultFormat"] = "json"
        data["returned"] = len(data["rowset"])
    return json.dumps(response).encode()


class RustConnectorBridge:
    """ASGI middleware: rewrites login requests and query responses."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or path not in (
            "/session/v1/login-request",
            "/queries/v1/query-request",
        ):
            await self.app(scope, receive, send)
            return

        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = dict(scope["headers"])
        if headers.get(b"content-encoding") == b"gzip":
            body = gzip.decompress(body)
        if path == "/session/v1/login-request":
            body = rewrite_login(body)
        else:
            body = rewrite_query(body)
        scope = dict(scope)
        scope["headers"] = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")
        ] + [(b"content-length", str(len(body)).encode())]

        async def receive_body():
            return {"type": "http.request", "body": body, "more_body": False}

        start = {}
        chunks = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    out = b"".join(chunks)
                    if path == "/queries/v1/query-request":
                        out = rewrite_query_response(out)
                    start["headers"] = [
                        (k, v) for k, v in start.get("headers", []) if k != b"content-length"
                    ] + [(b"content-length", str(len(out)).encode())]
                    await send(start)
                    await send({"type": "http.response.body", "body": out})

        await self.app(scope, receive_body, capture)


app = RustConnectorBridge(fakesnow_app)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
