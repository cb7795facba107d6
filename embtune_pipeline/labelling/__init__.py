"""`embtune label`: a page on 127.0.0.1 where people judge pooled candidates, one query at a time. Each grade is
saved the moment it is given (a JudgmentStore), so closing the page or stopping the server loses nothing, and
the page opens again at the first query not fully judged. Export writes the eval-set file."""

from __future__ import annotations

from pathlib import Path

PAGE = Path(__file__).parent / "page.html"


def labelling_app(store, judge: str, export_path: Path, token: str, port: int,
                  title: str = "embtune: relevance labelling"):
    """A Starlette app over one JudgmentStore; every grade it saves has `judge` as provenance. Every request
    must pass `lib.local_page.check_request` (token, Host, Origin, JSON body, size); bad input is a 4xx."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    from embtune_pipeline.lib.evaluation.judgments import GRADES
    from embtune_pipeline.lib.local_page import (MAX_BODY_BYTES, BadRequest, check_request, json_for_script,
                                                 parse_grade_request, parse_json_body)

    page = PAGE.read_text().replace("__CONFIG__", json_for_script(
        {"judge": judge, "title": title, "token": token, "grades": {str(k): v for k, v in GRADES.items()}}))

    async def body_of(request) -> dict:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise BadRequest(413, f"a request body is at most {MAX_BODY_BYTES} bytes")
        return parse_json_body(body)

    def guarded(handler):
        async def endpoint(request):
            try:
                check_request(request.method, request.headers, request.query_params.get("token"), token, port)
                return await handler(request)
            except BadRequest as e:
                return JSONResponse({"error": str(e)}, status_code=e.status)
        return endpoint

    async def index(request):
        return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                           "style-src 'unsafe-inline'", "Referrer-Policy": "no-referrer"})

    async def queries(request):
        return JSONResponse(store.queries(judge))

    async def candidates(request):
        return JSONResponse(store.candidates(request.path_params["query_id"], judge))

    async def record(request):
        grade = parse_grade_request(await body_of(request))
        try:
            store.record(grade.query_id, grade.doc_id, judge, grade.grade)
        except KeyError as e:  # not a pooled candidate
            raise BadRequest(400, str(e.args[0])) from None
        return JSONResponse({"saved": True})

    async def export(request):
        await body_of(request)
        counts = store.export(export_path)
        return JSONResponse({"path": str(export_path), **counts})

    return Starlette(routes=[
        Route("/", guarded(index)), Route("/api/queries", guarded(queries)),
        Route("/api/queries/{query_id}", guarded(candidates)),
        Route("/api/judgments", guarded(record), methods=["POST"]),
        Route("/api/export", guarded(export), methods=["POST"]),
    ])


def serve(store, judge: str, export_path: Path, port: int, token: str) -> None:
    """Serve the page on 127.0.0.1 until interrupted (only this machine can reach it, with the token)."""
    import uvicorn

    uvicorn.run(labelling_app(store, judge, export_path, token, port), host="127.0.0.1", port=port,
                log_level="warning")
