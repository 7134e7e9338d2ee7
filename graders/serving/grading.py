"""The service's grading core: built-in graders behind the concurrency gate, run by the runner.

Nothing here re-implements grading: a request picks a :func:`~judgeforge.graders.builtin.get_grader`
grader (cached per dimension(s)/mode/constrained), or, for a trained judge's dimensions, the
grader its judge card describes (:meth:`LLMGrader.from_card`: the training prompt, limits and
calibration), and :class:`GradingRunner` grades the items
(one or a batch), exactly as the Python API does. :class:`GatedGrader` adds what a shared
service needs: a slot from the :class:`~judgeforge.graders.serving.limits.Gate` and a hard
``request_timeout_s``, both answered as error values that the API turns into 503s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from judgeforge.errors import ConfigError
from judgeforge.graders.builtin import get_grader
from judgeforge.graders.llm_grader import LLMGrader
from judgeforge.graders.results import GraderError, GraderResult, is_error
from judgeforge.graders.runner import GradingRunner
from judgeforge.graders.serving.limits import Busy, Gate
from judgeforge.graders.serving.schemas import ScoreItem, ScoreOptions, ScoreResult
from judgeforge.graders.serving.settings import ServiceSettings
from judgeforge.models.base import ChatModel
from judgeforge.models.retry import call_deadline

if TYPE_CHECKING:
    from judgeforge.card import JudgeCard

__all__ = ["GatedGrader", "GraderPool", "grade_items", "to_result", "UNAVAILABLE_ERRORS",
           "http_status_of"]

# error_type values that mean "the model server could not grade now" (-> 503)
UNAVAILABLE_ERRORS = frozenset({
    "Busy", "ModelError", "ModelConnectionError", "ModelTimeoutError", "ModelStatusError",
    "ModelRateLimitError", "ServerError", "TimeoutError",
})
# error_type values that mean "this model server cannot grade the way the request asked" (-> 422)
REQUEST_ERRORS = frozenset({"ConfigError", "MissingInput", "MappingError"})
# error_type values that mean "the model server answered something unusable" (-> 502)
BAD_UPSTREAM_ERRORS = frozenset({"ModelResponseError"})


def http_status_of(result: GraderResult) -> int:
    """The HTTP status of a single grading: 200 for scores and parse failures (the judge
    answered), 502 for an unusable model-server reply, 503 for unavailability, 422 for
    unsupported options, else 500."""
    if not is_error(result):
        return 200
    etype = str(result.metadata.get("error_type", ""))
    if etype == "ParseFailure":
        return 200
    if etype in BAD_UPSTREAM_ERRORS:
        return 502
    if etype in UNAVAILABLE_ERRORS:
        return 503
    if etype in REQUEST_ERRORS:
        return 422
    return 500


class GatedGrader:
    """Wraps a grader: waits for a gate slot, then grades within ``timeout_s`` (error values)."""

    stateful = False

    def __init__(self, inner: LLMGrader, gate: Gate, timeout_s: float) -> None:
        self.inner = inner
        self.name = inner.name
        self.gate = gate
        self.timeout_s = timeout_s

    def _error(self, error_type: str, reason: str, started: float) -> GraderError:
        return GraderError(name=self.name, error=reason, reason=reason,
                           metadata={"error_type": error_type, "retryable": True,
                                     "service_latency_s": time.perf_counter() - started})

    async def aevaluate(self, **kwargs: Any) -> GraderResult:
        started = time.perf_counter()
        try:
            async with self.gate.slot():
                queued = time.perf_counter() - started
                # the model reports its own last failure (a 500, a reset) just before the limit
                with call_deadline(max(0.05, self.timeout_s - 0.25)):
                    async with asyncio.timeout(self.timeout_s):
                        result = await self.inner.aevaluate(**kwargs)
        except Busy as exc:
            return self._error("Busy", exc.reason, started)
        except TimeoutError:
            return self._error("ModelTimeoutError", "the model server did not answer within "
                               f"request_timeout_s={self.timeout_s:g}", started)
        result.metadata["queue_s"] = queued
        result.metadata["service_latency_s"] = time.perf_counter() - started
        return result


class GraderPool:
    """Graders for the offered names, created on first use and reused.

    With a ``card``, dimensions the judge was trained on are graded with the card's prompt
    (scales from ``settings``, which the ``serve`` command fills from the card); other names
    get the built-in graders.
    """

    def __init__(self, model: ChatModel, settings: ServiceSettings,
                 card: JudgeCard | None = None) -> None:
        self.model = model
        self.settings = settings
        self.card = card
        self._graders: dict[tuple[Any, ...], LLMGrader] = {}
        # Validate the offered names now (unknown names raise ConfigError at start-up).
        for name in settings.graders:
            self._build((name,), settings.default_mode, settings.constrained)

    def _build(self, dims: tuple[str, ...], mode: str, constrained: bool) -> LLMGrader:
        key = (dims, mode, constrained)
        grader = self._graders.get(key)
        if grader is None:
            opts: dict[str, Any] = {"mode": mode, "constrained": constrained,
                                    "timeout": self.settings.request_timeout_s}
            if self.card is not None and set(dims) <= set(self.card.dimensions):
                grader = LLMGrader.from_card(
                    self.card, self.model, name="+".join(dims),
                    dimensions={d: self.settings.scale_of(d) for d in dims}, **opts)
            elif len(dims) == 1:
                grader = get_grader(dims[0], self.model, scale=self.settings.scale_of(dims[0]),
                                    **opts)
            else:  # each dimension on its own served scale (--scale quality=1-5)
                grader = get_grader("multi", self.model,
                                    dimensions={d: self.settings.scale_of(d) for d in dims},
                                    **opts)
                grader.name = "+".join(dims)
            self._graders[key] = grader
        return grader

    def resolve(self, options: ScoreOptions) -> tuple[LLMGrader, str, bool]:
        """(grader, mode, constrained) for a request; :class:`ConfigError` names a bad choice."""
        s = self.settings
        dim = options.dimension if options.dimension is not None else s.default_grader
        dims = (dim,) if isinstance(dim, str) else tuple(dim)
        if not dims or len(set(dims)) != len(dims):
            raise ConfigError("'dimension' must be one name or a list of distinct names")
        unknown = [d for d in dims if d not in s.graders]
        if unknown:
            raise ConfigError(f"dimension {unknown[0]!r} is not offered here; offered: "
                              f"{', '.join(s.graders)}")
        if len(dims) > 1 and "multi" in dims:
            raise ConfigError("'multi' cannot be combined with other dimensions")
        mode = options.mode or s.default_mode
        constrained = s.constrained if options.constrained is None else options.constrained
        return self._build(dims, mode, constrained), mode, constrained

    def offered(self) -> list[LLMGrader]:
        """One grader per offered name (default mode), in the configured order."""
        s = self.settings
        return [self._build((n,), s.default_mode, s.constrained) for n in s.graders]


async def grade_items(grader: LLMGrader, items: Sequence[ScoreItem], gate: Gate,
                      settings: ServiceSettings) -> list[GraderResult]:
    """Grade ``items`` with ``grader`` through the runner (results in order, errors as values)."""
    gated = GatedGrader(grader, gate, settings.request_timeout_s)
    runner = GradingRunner({grader.name: gated},
                           max_concurrency=max(1, min(len(items), settings.max_concurrency)),
                           show_progress=False)
    results = await runner.arun([item.grader_inputs() for item in items])
    return results[grader.name]


def to_result(result: GraderResult, *, index: int, item: ScoreItem, grader: LLMGrader,
              mode: str, constrained: bool, include_metadata: bool) -> ScoreResult:
    """The API's view of one grader result."""
    meta = dict(result.metadata)
    error = is_error(result)
    return ScoreResult(
        index=index, id=item.id, grader=grader.name,
        score=None if error else float(result.score),  # type: ignore[union-attr]
        normalized_score=None if error else meta.get("normalized_score"),
        scores=meta.get("scores") if not error else None,
        reason=result.reason,
        parse_status="ok" if not error else str(meta.get("parse_status") or "error"),
        error=str(result.error) if error else None,  # type: ignore[union-attr]
        error_type=str(meta.get("error_type")) if error else None,
        mode=mode, constrained=constrained,
        model=str(meta.get("model") or getattr(grader.model, "name", "")),
        latency_s=float(meta.get("service_latency_s") or 0.0),
        model_latency_s=meta.get("latency_s"),
        metadata=result.to_dict()["metadata"] if include_metadata else None,
    )
