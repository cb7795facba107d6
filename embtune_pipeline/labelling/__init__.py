"""`embtune label`: a page on 127.0.0.1 where people judge pooled candidates, one query at a time. Each grade is
saved the moment it is given (a JudgmentStore), so closing the page or stopping the server loses nothing, and
the page opens again at the first query not fully judged. Export writes the eval-set file."""

from __future__ import annotations

from pathlib import Path

PAGE = Path(__file__).parent / "page.html"


def labelling_app(store, judge: str, export_path: Path, title: str = "embtune: relevance labelling"):
    """A Starlette app over one JudgmentStore; every grade it saves has `judge` as provenance."""
    import json

    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    from embtune_pipeline.lib.evaluation.judgments import GRADES

    page = PAGE.read_text().replace("__CONFIG__", json.dumps({"judge": judge, "title": title,
                                                               "grades": {str(k): v for k, v in GRADES.items()}}))

    async def index(request):
        return HTMLResponse(page)

    async def queries(request):
        return JSONResponse(store.queries(judge))

    async def candidates(request):
        return JSONResponse(store.candidates(request.path_params["query_id"], judge))

    async def record(request):
        body = await request.json()
        try:
            store.record(str(body["query_id"]), str(body["doc_id"]), judge, int(body["grade"]))
        except (KeyError, ValueError, TypeError) as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        return JSONResponse({"saved": True})

    async def export(request):
        counts = store.export(export_path)
        return JSONResponse({"path": str(export_path), **counts})

    return Starlette(routes=[
        Route("/", index), Route("/api/queries", queries), Route("/api/queries/{query_id}", candidates),
        Route("/api/judgments", record, methods=["POST"]), Route("/api/export", export, methods=["POST"]),
    ])


def serve(store, judge: str, export_path: Path, port: int) -> None:
    """Serve the page on 127.0.0.1 until interrupted (only this machine can reach it)."""
    import uvicorn

    uvicorn.run(labelling_app(store, judge, export_path), host="127.0.0.1", port=port, log_level="warning")
