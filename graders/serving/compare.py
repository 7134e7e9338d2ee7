"""``POST /v1/compare``: which of two responses is better (the pairwise judge, both orders).

Same auth, body limit, text/message limits, concurrency gate and timeouts as ``/v1/score``
(the item is graded by :func:`~judgeforge.graders.serving.grading.grade_items` through a
:class:`~judgeforge.graders.serving.grading.GatedGrader`); the status codes follow
:func:`~judgeforge.graders.serving.grading.http_status_of`: 200 for a verdict and for a judge
output without one (``preference`` null, ``parse_status`` says why; never a silent winner).
The grader is :class:`~judgeforge.graders.pairwise.PairwiseGrader`: the judge card's pairwise
settings when the served judge has them, else the default prompt.
"""

# No `from __future__ import annotations`: FastAPI must see the request class built per app.
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from judgeforge.graders.pairwise import PairwiseGrader
from judgeforge.graders.results import is_error
from judgeforge.graders.serving.grading import grade_items, http_status_of
from judgeforge.graders.serving.schemas import ChatMessage, ErrorResponse
from judgeforge.graders.serving.settings import ServiceSettings

__all__ = ["CompareRequest", "CompareResult", "add_compare_route", "limited_compare_request"]


class CompareRequest(BaseModel):
    """``POST /v1/compare``: one query (``query`` or ``messages``), two responses, options."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, max_length=256, description="your id, echoed in the result")
    query: str | None = Field(None, description="the user's request (or use messages)")
    messages: list[ChatMessage] | None = Field(
        None, description="the conversation before the responses (instead of query)")
    response_a: str = Field(description="the first response")
    response_b: str = Field(description="the second response")
    rubric: str | None = Field(None, description="what 'better' means for this item")
    reference: str | None = Field(None, description="a reference answer")
    mode: Literal["expected", "sample"] | None = Field(
        None, description="'expected' (verdict-token probabilities) or 'sample' (parse "
        "<verdict>); default: expected")
    both_orders: bool = Field(True, description="judge (a, b) and (b, a) and average")
    include_metadata: bool = Field(False, description="add the grader's metadata (per-order "
                                   "verdicts, raw outputs, tokens)")

    @model_validator(mode="after")
    def _query_or_messages(self) -> "CompareRequest":
        if (self.query is None) == (self.messages is None):
            raise ValueError("give exactly one of 'query' or 'messages'")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' must not be empty")
        return self

    def grader_inputs(self) -> dict[str, Any]:
        """Keyword arguments for the pairwise grader's ``aevaluate``."""
        from judgeforge.prompt import query_of

        query: Any = self.query
        if self.messages is not None:
            query = query_of([m.model_dump() for m in self.messages])
        return {"query": query, "response_a": self.response_a, "response_b": self.response_b,
                "rubric": self.rubric, "reference": self.reference}


class CompareResult(BaseModel):
    """One comparison: a verdict, or ``error`` (then ``preference`` is null)."""

    id: str | None = None
    grader: str
    preference: Literal["a", "b", "tie"] | None = Field(
        None, description="the better response, or tie")
    probability: float | None = Field(None, description="the verdict's probability")
    margin: float | None = Field(None, description="P(a) - P(b): positive favours a")
    orders_disagree: bool | None = Field(None, description="the two orders gave different "
                                         "verdicts (both_orders)")
    reason: str = ""
    parse_status: str
    error: str | None = None
    error_type: str | None = None
    mode: str
    both_orders: bool
    model: str
    latency_s: float
    model_latency_s: float | None = None
    metadata: dict[str, Any] | None = None


def limited_compare_request(settings: ServiceSettings) -> type[CompareRequest]:
    """:class:`CompareRequest` with the deployment's text and message limits."""
    text = Annotated[str, Field(max_length=settings.max_text_chars)]
    message = create_model("ChatMessage", __base__=ChatMessage,
                           content=(text, Field(description="the turn's text")))
    messages = Annotated[list[message] | None,
                         Field(max_length=settings.max_messages)]
    fields = CompareRequest.model_fields
    return create_model(
        "CompareRequest", __base__=CompareRequest, __doc__=CompareRequest.__doc__,
        query=(text | None, fields["query"]), messages=(messages, fields["messages"]),
        response_a=(text, fields["response_a"]), response_b=(text, fields["response_b"]),
        rubric=(text | None, fields["rubric"]), reference=(text | None, fields["reference"]))


def add_compare_route(app: FastAPI, settings: ServiceSettings, model: Any,
                      card: Any = None) -> None:
    """Add ``POST /v1/compare`` to ``app`` (graders cached per mode and orders)."""
    graders: dict[tuple[str, bool], PairwiseGrader] = {}
    CompareIn = limited_compare_request(settings)

    def grader_for(mode: str, both_orders: bool) -> PairwiseGrader:
        key = (mode, both_orders)
        if key not in graders:
            kw: dict[str, Any] = {"mode": mode, "both_orders": both_orders,
                                  "timeout": settings.request_timeout_s}
            if card is not None and getattr(card, "pairwise", None) is not None:
                graders[key] = PairwiseGrader.from_card(card, model, **kw)
            else:
                graders[key] = PairwiseGrader(model, **kw)
        return graders[key]

    @app.post("/v1/compare", response_model=CompareResult, tags=["scoring"],
              summary="Which of two responses is better (both orders)",
              responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})
    async def compare(body: CompareIn, request: Request) -> Any:  # type: ignore[valid-type]
        mode = body.mode or "expected"  # type: ignore[attr-defined]
        grader = grader_for(mode, body.both_orders)  # type: ignore[attr-defined]
        [result] = await grade_items(grader, [body], request.app.state.gate,  # type: ignore
                                     settings)
        meta = dict(result.metadata)
        error = is_error(result)
        out = CompareResult(
            id=body.id, grader=grader.name,  # type: ignore[attr-defined]
            preference=None if error else result.preference,  # type: ignore[union-attr]
            probability=None if error else result.probability,  # type: ignore[union-attr]
            margin=None if error else float(result.score),  # type: ignore[union-attr]
            orders_disagree=meta.get("orders_disagree"), reason=result.reason,
            parse_status="ok" if not error else str(meta.get("parse_status") or "error"),
            error=str(result.error) if error else None,  # type: ignore[union-attr]
            error_type=str(meta.get("error_type")) if error else None,
            mode=mode, both_orders=body.both_orders,  # type: ignore[attr-defined]
            model=str(meta.get("model") or getattr(model, "name", "")),
            latency_s=float(meta.get("service_latency_s") or 0.0),
            model_latency_s=meta.get("latency_s"),
            metadata=result.to_dict()["metadata"]
            if body.include_metadata else None)  # type: ignore[attr-defined]
        status = http_status_of(result)
        if status == 200:
            return out
        headers = {"Retry-After": "1"} if status == 503 else None
        body_out = ErrorResponse(detail=f"comparison failed: {out.error}",
                                 error_type=out.error_type, result=out.model_dump())
        return JSONResponse(body_out.model_dump(exclude_none=True), status_code=status,
                            headers=headers)
