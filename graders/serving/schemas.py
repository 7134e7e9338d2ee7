"""Request and response models of the scoring API.

The static classes here document the shapes; :func:`limited_models` derives the classes the app
actually validates with, carrying the deployment's limits (``max_text_chars``,
``max_messages``, ``max_batch``), so a too-long text or batch is a 422 that names the field and
the limit, and the OpenAPI schema shows the limits.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from judgeforge.graders.serving.settings import ServiceMode, ServiceSettings

__all__ = [
    "ChatMessage", "ScoreItem", "ScoreOptions", "ScoreRequest", "BatchRequest", "ScoreResult",
    "BatchResponse", "GraderInfo", "GradersResponse", "ModelServerHealth", "HealthResponse",
    "ErrorResponse", "LimitedModels", "limited_models", "LIMIT_OF_ERROR",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatMessage(_Strict):
    """One turn of the conversation being graded."""

    role: Literal["system", "user", "assistant"]
    content: str


class ScoreItem(_Strict):
    """One (query, response) pair. Give ``query`` or ``messages``, not both."""

    id: str | None = Field(None, max_length=256, description="your id, echoed in the result")
    query: str | None = Field(None, description="the user's request (or use messages)")
    messages: list[ChatMessage] | None = Field(
        None, description="the conversation before the response (instead of query)")
    response: str = Field(description="the response to grade")
    rubric: str | None = Field(None, description="grading rubric for this item")
    reference: str | None = Field(None, description="a reference answer that deserves the top "
                                  "score")

    @model_validator(mode="after")
    def _query_or_messages(self) -> ScoreItem:
        if (self.query is None) == (self.messages is None):
            raise ValueError("give exactly one of 'query' or 'messages'")
        if self.messages is not None and not self.messages:
            raise ValueError("'messages' must not be empty")
        return self

    def grader_inputs(self) -> dict[str, Any]:
        """Keyword arguments for ``grader.aevaluate`` (the Python API's inputs)."""
        from judgeforge.prompt import query_of

        query: Any = self.query
        if self.messages is not None:
            query = query_of([m.model_dump() for m in self.messages])
        return {"query": query, "response": self.response, "rubric": self.rubric,
                "reference": self.reference}


class ScoreOptions(_Strict):
    """How to grade: which dimension(s) and which scoring mode."""

    dimension: str | list[str] | None = Field(
        None, description="an offered grader (see GET /v1/graders), or a list of 2+ offered "
        "dimensions scored together in one call; default: the service's default grader")
    mode: ServiceMode | None = Field(
        None, description="'expected' (probability-weighted score from the score token; works "
        "with any model), 'sample' (parse the judge's <score> output; gives a reason) or "
        "'vote' (several samples); default: the service's default mode")
    constrained: bool | None = Field(
        None, description="constrain decoding to the score format (sample/vote modes)")
    include_metadata: bool = Field(False, description="add the grader's metadata (raw output, "
                                   "tokens, distribution...) to each result")


class ScoreRequest(ScoreItem, ScoreOptions):
    """``POST /v1/score``: one pair and how to grade it."""


class BatchRequest(ScoreOptions):
    """``POST /v1/score/batch``: many pairs graded the same way, concurrently."""

    items: list[ScoreItem] = Field(description="the pairs to grade; results come back in order")


class ScoreResult(BaseModel):
    """One grading: a score, or ``error`` (then ``score`` is null; never a silent 0)."""

    index: int = Field(0, description="position in the batch (0 for a single score)")
    id: str | None = Field(None, description="the id the request gave")
    grader: str
    score: float | None = Field(None, description="the score on the grader's scale")
    normalized_score: float | None = Field(None, description="the score mapped to 0-1")
    scores: dict[str, float] | None = Field(None, description="per dimension (several "
                                            "dimensions)")
    reason: str = ""
    parse_status: str = Field(description="'ok', a parse failure kind (no_score, not_integer, "
                              "out_of_range, missing_dimension), or 'error'")
    error: str | None = None
    error_type: str | None = None
    mode: str
    constrained: bool
    model: str = Field(description="the judge model that graded")
    latency_s: float = Field(description="seconds in the service for this item (queue + model)")
    model_latency_s: float | None = Field(None, description="seconds of the grader's model work")
    metadata: dict[str, Any] | None = None


class BatchResponse(BaseModel):
    results: list[ScoreResult]
    count: int
    scored: int
    failed: int
    latency_s: float


class GraderInfo(BaseModel):
    name: str
    description: str
    dimensions: dict[str, dict[str, int]] = Field(description="dimension -> {min, max}")
    default: bool


class GradersResponse(BaseModel):
    graders: list[GraderInfo]
    default_grader: str
    default_mode: str
    modes: list[str]
    model: str
    limits: dict[str, float]


class ModelServerHealth(BaseModel):
    ok: bool
    error: str | None = None
    checked_s_ago: float


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable"]
    model_server: ModelServerHealth
    gradings: dict[str, int]


class ErrorResponse(BaseModel):
    detail: Any = Field(description="what went wrong (a list of field errors for a 422 from "
                        "validation)")
    message: str | None = Field(None, description="a one-line summary naming the field and "
                                "limit hit (validation errors)")
    error_type: str | None = Field(None, description="the failure's class (503: Busy, "
                                   "ModelConnectionError, ModelTimeoutError...)")
    result: Any | None = Field(None, description="the failed grading(s) (503s)")


# pydantic error type -> (location suffix, setting) that names the limit for a 422 summary
LIMIT_OF_ERROR: dict[tuple[str, str], str] = {
    ("string_too_long", ""): "max_text_chars",
    ("too_long", "items"): "max_batch",
    ("too_long", "messages"): "max_messages",
}


class LimitedModels(NamedTuple):
    score_request: type[ScoreRequest]
    batch_request: type[BatchRequest]


def limited_models(settings: ServiceSettings) -> LimitedModels:
    """Request classes that enforce ``settings``' text, message and batch limits."""
    text = Annotated[str, Field(max_length=settings.max_text_chars)]
    message = create_model("ChatMessage", __base__=ChatMessage,
                           content=(text, Field(description="the turn's text")))
    messages = Annotated[list[message] | None,
                         Field(max_length=settings.max_messages)]
    fields: dict[str, Any] = {
        "query": (text | None, ScoreItem.model_fields["query"]),
        "messages": (messages, ScoreItem.model_fields["messages"]),
        "response": (text, ScoreItem.model_fields["response"]),
        "rubric": (text | None, ScoreItem.model_fields["rubric"]),
        "reference": (text | None, ScoreItem.model_fields["reference"]),
    }
    item = create_model("ScoreItem", __base__=ScoreItem, **fields)
    request = create_model("ScoreRequest", __base__=(item, ScoreOptions),
                           __doc__=ScoreRequest.__doc__)
    items = Annotated[list[item], Field(min_length=1,
                                        max_length=settings.max_batch)]
    batch = create_model("BatchRequest", __base__=BatchRequest,
                         items=(items, BatchRequest.model_fields["items"]))
    return LimitedModels(request, batch)  # type: ignore[arg-type]
