"""The scoring API: ``create_app(settings, model) -> FastAPI``.

Routes: ``POST /v1/score`` (one pair), ``POST /v1/score/batch`` (many, concurrent, in order,
per-item errors as values), ``POST /v1/compare`` (which of two responses is better:
:mod:`judgeforge.graders.serving.compare`), ``GET /v1/graders``, ``GET /healthz`` (reflects
the model server), and the OpenAPI docs (``/docs``, ``/openapi.json``). The model is injected,
so the same app runs against a managed vLLM server, a remote one, or a test's server.

Status codes: 200 for a score and for a judge output without a valid score (``parse_status``
says why; ``score`` is null); 401 without the API key; 413 over ``max_body_bytes``; 422 for
invalid or over-limit fields (the message names the limit) and for options the model server
cannot do; 503 with a reason when the model server is unreachable, hangs past
``request_timeout_s``, or every slot and the queue are taken. A batch answers 200 with
per-item errors, or 503 when every item failed because the model server is unavailable. A
request whose client disconnects is cancelled (:mod:`judgeforge.graders.serving.disconnect`).
"""

# No `from __future__ import annotations`: FastAPI must see the request classes built per app.
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from judgeforge.errors import ConfigError
from judgeforge.graders.results import is_error
from judgeforge.graders.serving.auth import BearerAuthMiddleware
from judgeforge.graders.serving.compare import add_compare_route
from judgeforge.graders.serving.disconnect import CancelOnDisconnectMiddleware
from judgeforge.graders.serving.grading import (
    UNAVAILABLE_ERRORS,
    GraderPool,
    grade_items,
    http_status_of,
    to_result,
)
from judgeforge.graders.serving.health import ModelHealth
from judgeforge.graders.serving.limits import BodyLimitMiddleware, Gate
from judgeforge.graders.serving.schemas import (
    LIMIT_OF_ERROR,
    BatchResponse,
    ErrorResponse,
    GraderInfo,
    GradersResponse,
    HealthResponse,
    ModelServerHealth,
    ScoreResult,
    limited_models,
)
from judgeforge.graders.serving.settings import SERVICE_MODES, ServiceSettings
from judgeforge.models.base import ChatModel

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (401, "missing or wrong API key"), (413, "body over max_body_bytes"),
        (422, "invalid or over-limit field (named), or an option the model server lacks"),
        (503, "model server unavailable or too slow, or the service is saturated"))
}


def _error(status: int, detail: Any, message: str | None = None,
           headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = ErrorResponse(detail=detail, message=message, **extra).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_summary(errors: list[dict[str, Any]], settings: ServiceSettings) -> str:
    """One line naming the first error's field and, for limits, the setting and its value."""
    first = errors[0]
    if first.get("type") == "json_invalid":
        pos = (first.get("loc") or [None, None])[-1]
        why = (first.get("ctx") or {}).get("error", "invalid JSON")
        return f"malformed JSON body: {why} (at character {pos})"
    loc = [str(p) for p in first.get("loc", ())]
    where = ".".join(loc) or "body"
    text = f"{where}: {first.get('msg', 'invalid')}"
    last = loc[-1] if loc else ""
    for (etype, field), setting in LIMIT_OF_ERROR.items():
        if first.get("type") == etype and (not field or field == last):
            text += f" (limit {setting}={getattr(settings, setting)})"
            break
    more = len(errors) - 1
    return text + (f"; and {more} more error(s)" if more else "")


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    """Validation errors without the offending input (which may be megabytes of text)."""
    out = []
    for err in errors:
        item = {k: v for k, v in dict(err).items() if k in ("type", "loc", "msg")}
        ctx = err.get("ctx") if isinstance(err, dict) else None
        if ctx:
            item["ctx"] = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                           for k, v in ctx.items()}
        out.append(item)
    return out


def create_app(settings: ServiceSettings, model: ChatModel, *, own_model: bool = False,
               model_api_key: str | None = None, card: Any = None) -> FastAPI:
    """The scoring API for ``model`` (any :class:`ChatModel`; ``model.base_url`` is health-
    checked when it has one). ``own_model``: close the model when the app shuts down.
    ``card``: the served judge's :class:`~judgeforge.card.JudgeCard` (its prompt grades its
    dimensions)."""
    pool = GraderPool(model, settings, card)  # unknown grader names fail here, before serving
    models = limited_models(settings)
    ScoreRequestIn = models.score_request
    BatchRequestIn = models.batch_request

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.gate = Gate(settings.max_concurrency, settings.max_queue,
                              settings.queue_timeout_s)
        url = (lambda: getattr(model, "base_url", None)) if hasattr(model, "base_url") else None
        app.state.health = ModelHealth(url,
                                       timeout_s=settings.health_timeout_s,
                                       cache_s=settings.health_cache_s, api_key=model_api_key)
        try:
            yield
        finally:
            await app.state.health.aclose()
            if own_model:
                await model.aclose()

    app = FastAPI(
        title="judgeforge scoring API",
        description="Scores (query, response) pairs with an LLM judge that writes "
                    "<score>X</score>. " + (__doc__ or "").split("\n\n", 2)[2].strip(),
        version=_version(), lifespan=lifespan, responses=_ERRORS)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.api_key:
        app.add_middleware(BearerAuthMiddleware, api_key=settings.api_key, exempt=("/healthz",))
        _declare_bearer(app)
    app.add_middleware(CancelOnDisconnectMiddleware)  # outermost: a gone client's work stops

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _clean_errors(exc.errors())
        return _error(422, errors, _validation_summary(errors, settings) if errors else None)

    @app.exception_handler(ConfigError)
    async def _on_config(request: Request, exc: ConfigError) -> JSONResponse:
        return _error(422, str(exc))

    @app.post("/v1/score", response_model=ScoreResult, tags=["scoring"],
              summary="Score one (query, response) pair")
    async def score(body: ScoreRequestIn, request: Request) -> Any:  # type: ignore[valid-type]
        grader, mode, constrained = pool.resolve(body)
        [result] = await grade_items(grader, [body], request.app.state.gate, settings)
        out = to_result(result, index=0, item=body, grader=grader, mode=mode,
                        constrained=constrained,
                        include_metadata=body.include_metadata)  # type: ignore[attr-defined]
        status = http_status_of(result)
        if status == 200:
            return out
        kind = "service saturated" if out.error_type == "Busy" else (
            "model server unavailable" if status == 503 else "grading failed")
        headers = {"Retry-After": "1"} if status == 503 else None
        return _error(status, f"{kind}: {out.error}", headers=headers,
                      error_type=out.error_type, result=out.model_dump())

    @app.post("/v1/score/batch", response_model=BatchResponse, tags=["scoring"],
              summary="Score many pairs concurrently (results in order, errors as values)")
    async def score_batch(body: BatchRequestIn, request: Request) -> Any:  # type: ignore
        started = time.perf_counter()
        grader, mode, constrained = pool.resolve(body)
        items = body.items  # type: ignore[attr-defined]  # a model made by create_model
        include_metadata = body.include_metadata  # type: ignore[attr-defined]
        results = await grade_items(grader, items, request.app.state.gate, settings)
        outs = [to_result(r, index=i, item=item, grader=grader, mode=mode,
                          constrained=constrained, include_metadata=include_metadata)
                for i, (r, item) in enumerate(zip(results, items))]
        failed = sum(1 for r in results if is_error(r))
        resp = BatchResponse(results=outs, count=len(outs), scored=len(outs) - failed,
                             failed=failed, latency_s=time.perf_counter() - started)
        if outs and all(o.error_type in UNAVAILABLE_ERRORS for o in outs):
            kind = "service saturated" if outs[0].error_type == "Busy" else \
                "model server unavailable"
            return _error(503, f"{kind}: {outs[0].error}", headers={"Retry-After": "1"},
                          error_type=outs[0].error_type, result=resp.model_dump())
        return resp

    add_compare_route(app, settings, model, card)

    @app.get("/v1/graders", response_model=GradersResponse, tags=["info"],
             summary="The graders, modes and limits this service offers")
    async def graders() -> GradersResponse:
        infos = [GraderInfo(name=name, description=(g.__doc__ or "").strip().split("\n")[0],
                            dimensions={d: {"min": s.min, "max": s.max}
                                        for d, s in g.dimensions.items()},
                            default=name == settings.default_grader)
                 for name, g in zip(settings.graders, pool.offered())]
        limits = {k: float(getattr(settings, k)) for k in (
            "max_body_bytes", "max_batch", "max_text_chars", "max_messages", "max_concurrency",
            "max_queue", "queue_timeout_s", "request_timeout_s")}
        return GradersResponse(graders=infos, default_grader=settings.default_grader,
                               default_mode=settings.default_mode, modes=list(SERVICE_MODES),
                               model=str(getattr(model, "name", "")), limits=limits)

    @app.get("/healthz", response_model=HealthResponse, tags=["info"],
             responses={503: {"model": HealthResponse, "description": "model server down"}},
             summary="Service health, including the model server's (no API key needed)")
    async def healthz(request: Request) -> JSONResponse:
        ok, error, ago = await request.app.state.health.check()
        body = HealthResponse(status="ok" if ok else "unavailable",
                              model_server=ModelServerHealth(ok=ok, error=error,
                                                             checked_s_ago=round(ago, 3)),
                              gradings=request.app.state.gate.stats())
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    return app


def _declare_bearer(app: FastAPI) -> None:
    """Show the bearer requirement in the OpenAPI schema (the middleware enforces it)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer"}}
        for path, ops in schema.get("paths", {}).items():
            if path != "/healthz":
                for op in ops.values():
                    op["security"] = [{"bearerAuth": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _version() -> str:
    import judgeforge

    return judgeforge.__version__
