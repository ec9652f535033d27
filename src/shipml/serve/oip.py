"""Open Inference Protocol v2 routes (KServe / Triton HTTP): the real tritonclient works as is.

The wire format (JSON and binary tensors) is in the v2 package; these are the routes around it.
"""

from shipml.errors import ModelNotFound
from shipml.serve.recommend import check_tabular

__all__ = ["add_v2_routes"]


def add_v2_routes(app, pool, need, predictor, server_version: str) -> None:
    from fastapi import Depends, Request
    from fastapi.responses import Response

    from shipml.serve import v2

    def versions_of(request: Request, name: str, version: str | None):
        model, current = pool.get(name)
        check_tabular(model, name)  # OIP v2 is for tables: a recommender has its own routes
        if version is not None and version != str(current):
            raise ModelNotFound(f"model {name!r} serves version {current} here, not {version!r}")
        request.state.model, request.state.version = name, current
        return model, current

    @app.get("/v2")
    def server_meta() -> dict:
        return v2.server_metadata(server_version)

    @app.get("/v2/models/{name}")
    @app.get("/v2/models/{name}/versions/{version}")
    def model_meta(request: Request, name: str, version: str | None = None,
                   _key=Depends(need("predict"))):  # fmt: skip
        model, current = versions_of(request, name, version)
        return v2.model_metadata(name, [str(current)], model.schema)

    @app.get("/v2/models/{name}/ready")
    @app.get("/v2/models/{name}/versions/{version}/ready")
    def model_ready(request: Request, name: str, version: str | None = None,
                    _key=Depends(need("predict"))):  # fmt: skip
        versions_of(request, name, version)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def infer(name: str, request: Request, version: str | None = None,
                    key=Depends(need("predict"))):  # fmt: skip
        import asyncio

        body = await request.body()  # inflated by BodyLimit when sent gzip/deflate-encoded
        header_length = request.headers.get("inference-header-content-length")
        model, current = versions_of(request, name, version)

        def run():
            parsed = v2.parse_infer_request(body, header_length, model.schema)
            outputs = v2.compute_outputs(model, parsed)
            predictor.log_frame(name, model, current, parsed.frame, outputs,
                                key.name if key else None)  # fmt: skip
            return v2.build_infer_response(name, str(current), parsed, outputs)

        payload, headers = await asyncio.get_running_loop().run_in_executor(None, run)
        return Response(content=payload, headers=headers)
