"""A small OpenAI-compatible embedding server on 127.0.0.1: POST /v1/embeddings answered by a local
sentence-transformers model. It stands in for a hosted or self-hosted embedding API, reached through litellm
exactly as one is (settings `baselines: [{model: openai/NAME, params: {api_base: http://127.0.0.1:PORT/v1},
usd_per_million_tokens: 0}]`), so the baseline path is measured end to end offline.

    python benchmarks/embedding_server.py MODEL [--port 8099] [--max-seq-length 256]

MODEL: a packaged model name (all-MiniLM-L6-v2) or a sentence-transformers directory. Ctrl-C stops it.
"""

import argparse

import embtune_pipeline  # noqa: F401  (its import sets the process environment, before torch loads)


def app_for(model):
    import threading

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    lock = threading.Lock()  # one encoding at a time: the model is shared

    def embeddings(request_body: dict) -> dict:
        texts = request_body["input"] if isinstance(request_body["input"], list) else [request_body["input"]]
        with lock:
            vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        return {"object": "list", "model": request_body.get("model", ""),
                "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": 0, "total_tokens": 0}}

    async def endpoint(request):
        import anyio

        body = await request.json()
        return JSONResponse(await anyio.to_thread.run_sync(embeddings, body))

    return Starlette(routes=[Route("/v1/embeddings", endpoint, methods=["POST"])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--max-seq-length", type=int, default=256)
    args = ap.parse_args()

    import uvicorn

    from embtune_pipeline.lib.models import load_model, resolve_model_path

    model = load_model(resolve_model_path(args.model), args.max_seq_length)
    print(f"serving {args.model} at http://127.0.0.1:{args.port}/v1/embeddings", flush=True)
    uvicorn.run(app_for(model), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
