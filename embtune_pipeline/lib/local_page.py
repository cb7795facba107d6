"""Rules for a page served on 127.0.0.1 to the person at this machine (`embtune label`): which requests it
answers and what a write must look like. Any web page the person has open can send requests to 127.0.0.1,
and a DNS-rebinding page can even read the answers, so a request must carry the session's token, name this
machine as its Host, come from the page's own origin when it names one, and send a small JSON body."""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Mapping

from embtune_pipeline.lib.evaluation.judgments import GRADES, is_grade

LOCAL_HOSTS = ("127.0.0.1", "localhost")
TOKEN_HEADER = "x-embtune-token"
MAX_BODY_BYTES = 16 * 1024  # a judgment is a few hundred bytes


class BadRequest(ValueError):
    """A request the page refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def new_token() -> str:
    """A random per-session token (as Jupyter prints one): only someone shown the URL can use the page."""
    return secrets.token_urlsafe(24)


def page_url(port: int, token: str) -> str:
    return f"http://127.0.0.1:{port}/?token={token}"


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def check_request(method: str, headers: Mapping[str, str], query_token: str | None, token: str, port: int) -> None:
    """Raise BadRequest unless the request may be answered. `headers` are lower-case names."""
    host = headers.get("host", "")
    if _hostname(host) not in LOCAL_HOSTS:
        raise BadRequest(403, f"Host {host[:100]!r} is not this machine (use {page_url(port, '…')})")
    origin = headers.get("origin")
    if origin is not None and origin not in {f"http://{h}:{port}" for h in LOCAL_HOSTS}:
        raise BadRequest(403, f"requests from {origin[:100]!r} are not accepted")
    given = headers.get(TOKEN_HEADER) or query_token or ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise BadRequest(403, "missing or wrong token: open the URL `embtune label` printed")
    if method == "POST":
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            raise BadRequest(415, f"Content-Type must be application/json, not {kind[:60]!r}")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            raise BadRequest(413, f"a request body is at most {MAX_BODY_BYTES} bytes")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json_body(body: bytes) -> dict:
    """A JSON object from a request body, strictly: NaN/Infinity, bad UTF-8 or a non-object are 400s."""
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(413, f"a request body is at most {MAX_BODY_BYTES} bytes")
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(400, f"the body is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(value, dict):
        raise BadRequest(400, "the body must be a JSON object")
    return value


@dataclass(frozen=True)
class GradeRequest:
    """One grade a person gave: which pooled candidate and the grade."""
    query_id: str
    doc_id: str
    grade: int


def parse_grade_request(body: dict) -> GradeRequest:
    for field in ("query_id", "doc_id"):
        if not isinstance(body.get(field), str) or not body[field]:
            raise BadRequest(400, f"{field!r} must be a non-empty string")
    if not is_grade(body.get("grade")):
        raise BadRequest(400, f"grade {str(body.get('grade'))[:20]!r} is not one of the integers {sorted(GRADES)}")
    return GradeRequest(body["query_id"], body["doc_id"], int(body["grade"]))


def json_for_script(value) -> str:
    """JSON safe to place inside a <script> element: no `</script>`, comment or line-separator breaks out."""
    text = json.dumps(value)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text
