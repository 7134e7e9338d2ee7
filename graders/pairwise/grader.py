"""PairwiseGrader: which of two responses is better, read in both orders.

    grader = PairwiseGrader(model, mode="expected")
    result = await grader.aevaluate(query="...", response_a="...", response_b="...")
    result.preference, result.probability, result.metadata["orders_disagree"]

The prompt is :class:`~judgeforge.pairwise_prompt.PairwisePromptTemplate`'s (both responses,
``<verdict>A|B|TIE</verdict>``). Modes:

- ``expected``: prefill ``<verdict>`` and read the next token's top logprobs; the probabilities
  of ``A``, ``B`` and ``TIE`` (its first token) are renormalised over the three. No verdict
  token among the top ones is a parse failure.
- ``sample``: generate and parse the verdict tag (one-hot probabilities); no parsable verdict
  is a parse failure (an error value with ``parse_status``), never a winner.

``both_orders=True`` (the default) judges (a, b) and (b, a), maps the second back and averages
the probabilities; ``metadata["orders"]`` holds each order's verdict and
``metadata["orders_disagree"]`` whether they differ. A parse failure in either order fails the
comparison (the other order's verdict stays in the metadata). The verdict is the most probable
side; ``tie`` when the tie is at least as probable as either side, when the two sides are equally
probable, or (``tie_margin``) when ``|P(a) - P(b)| <= tie_margin``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from judgeforge.errors import ConfigError, JudgeforgeError, ModelError
from judgeforge.graders.base import BaseGrader
from judgeforge.graders.pairwise._inputs import pair_input_problem
from judgeforge.graders.results import GraderError, GraderPreference, GraderResult
from judgeforge.models.base import ChatModel, ChatResponse
from judgeforge.pairwise_prompt import (
    VERDICT_TAG,
    PairwisePromptTemplate,
    Preference,
    parse_verdict,
    verdict_token,
)
from judgeforge.parsing import ParseFailure, ParseFailureKind, checked_logprob

if TYPE_CHECKING:
    from judgeforge.card import JudgeCard

__all__ = ["PairwiseGrader", "PairwiseMode", "PAIRWISE_MODES", "decide"]

PairwiseMode = Literal["sample", "expected"]
PAIRWISE_MODES: tuple[str, ...] = ("sample", "expected")
_SIDES: tuple[Preference, ...] = ("a", "b", "tie")
_FLIP: dict[Preference, Preference] = {"a": "b", "b": "a", "tie": "tie"}


def decide(probs: Mapping[str, float], tie_margin: float | None = None) -> Preference:
    """The verdict for probabilities over ``a``/``b``/``tie`` (see the module docstring)."""
    pa, pb, pt = (float(probs.get(s, 0.0)) for s in _SIDES)
    if tie_margin is not None and abs(pa - pb) <= tie_margin:
        return "tie"
    if pa == pb or pt >= max(pa, pb):
        return "tie"
    return "a" if pa > pb else "b"


def _verdict_mass(resp: ChatResponse) -> dict[str, float]:
    """Probability mass of each side among the first token's alternatives (unnormalised)."""
    import math

    lps = resp.choices[0].logprobs if resp.choices else None
    if not lps:
        raise ConfigError("the server returned no logprobs; expected mode needs "
                          "logprobs/top_logprobs support")
    first = lps[0]
    top = dict(first.top)
    top.setdefault(first.token, first.logprob)
    mass: dict[str, float] = {s: 0.0 for s in _SIDES}
    for token, logprob in top.items():
        side = verdict_token(token)
        if side is not None:
            mass[side] += math.exp(checked_logprob(logprob, token))
    return mass


class PairwiseGrader(BaseGrader):
    """Compares ``response_a`` and ``response_b`` for ``query`` with a judge that writes
    ``<verdict>A|B|TIE</verdict>`` (see the module docstring).

    ``_aevaluate`` takes ``query`` (text or chat messages), ``response_a``, ``response_b`` and
    optional ``rubric``/``reference``; other keywords (a row's extra columns) are ignored.
    ``max_tokens=None`` means 256 (1024 with a thinking template) in sample mode.
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        template: PairwisePromptTemplate | None = None,
        name: str = "pairwise",
        mode: PairwiseMode = "expected",
        both_orders: bool = True,
        tie_margin: float | None = None,
        constrained: bool = False,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_logprobs: int = 20,
        seed: int | None = None,
        timeout: float | None = None,
        description: str = "",
    ) -> None:
        super().__init__(name, description)
        if mode not in PAIRWISE_MODES:
            raise ConfigError(f"mode must be one of {PAIRWISE_MODES}, got {mode!r}")
        if tie_margin is not None and not 0.0 <= tie_margin <= 1.0:
            raise ConfigError(f"tie_margin is a probability difference in 0-1, got {tie_margin}")
        self.model = model
        self.template = template or PairwisePromptTemplate()
        self.mode: PairwiseMode = mode
        self.both_orders = both_orders
        self.tie_margin = tie_margin
        self.constrained = constrained
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.top_logprobs = top_logprobs
        self.seed = seed
        self.timeout = timeout

    @classmethod
    def from_card(cls, card: JudgeCard, model: ChatModel, **overrides: Any) -> PairwiseGrader:
        """The grader a pairwise judge card describes (``card.pairwise``), ``overrides`` on top."""
        settings = getattr(card, "pairwise", None)
        if settings is None:
            raise ConfigError("this judge card has no pairwise settings (a pointwise judge: "
                              "compare with PointwisePreferenceGrader)")
        kw = settings.grader_kwargs() if hasattr(settings, "grader_kwargs") else dict(settings)
        kw.update(overrides)
        return cls(model, **kw)

    def fingerprint_data(self) -> dict[str, Any]:
        """What makes two gradings comparable (the runner's stale-result check)."""
        model = self.model
        url = "managed" if getattr(model, "managed", False) else getattr(model, "base_url", "")
        return {"name": self.name, "kind": "pairwise", "mode": self.mode,
                "both_orders": self.both_orders, "tie_margin": self.tie_margin,
                "constrained": self.constrained, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "top_logprobs": self.top_logprobs,
                "seed": self.seed, "prompt": self.template.settings(),
                "model": {"name": getattr(model, "name", None),
                          "model": str(getattr(model, "model", "") or ""),
                          "base_url": str(url or "")}}

    # -- one order -----------------------------------------------------------------------------
    async def _expected_order(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        resp = await self.model.achat(messages, prefill=f"<{VERDICT_TAG}>", max_tokens=1,
                                      logprobs=True, top_logprobs=self.top_logprobs,
                                      temperature=0.0, seed=self.seed, timeout=self.timeout)
        mass = _verdict_mass(resp)
        total = sum(mass.values())
        out: dict[str, Any] = {"raw_output": f"<{VERDICT_TAG}>{resp.text}",
                               "tokens": (resp.usage.prompt_tokens, resp.usage.completion_tokens),
                               "verdict_mass": total}
        if total <= 0.0:
            out["failure"] = ParseFailure(
                ParseFailureKind.NO_SCORE, f"no A/B/TIE token among the top {self.top_logprobs} "
                f"tokens after <{VERDICT_TAG}>", raw=out["raw_output"])
            return out
        out["probabilities"] = {s: m / total for s, m in mass.items()}
        out["reason"] = "verdict from the judge's verdict-token probabilities"
        return out

    async def _sample_order(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        max_tokens = self.max_tokens or (1024 if self.template.thinking else 256)
        kw: dict[str, Any] = {"temperature": self.temperature or 0.0, "max_tokens": max_tokens,
                              "seed": self.seed, "timeout": self.timeout}
        if self.constrained:
            kw["regex"] = self.template.verdict_regex()
        else:
            kw["stop"] = [f"</{VERDICT_TAG}>"]
        resp = await self.model.achat(messages, **kw)
        text = resp.text
        if not self.constrained and f"</{VERDICT_TAG}>" not in text and f"<{VERDICT_TAG}>" in text:
            text += f"</{VERDICT_TAG}>"  # the stop string is cut from the output
        out: dict[str, Any] = {"raw_output": resp.text,
                               "tokens": (resp.usage.prompt_tokens, resp.usage.completion_tokens)}
        parsed = parse_verdict(text)
        if isinstance(parsed, ParseFailure):
            out["failure"] = parsed
            return out
        out["probabilities"] = {s: 1.0 if s == parsed.preference else 0.0 for s in _SIDES}
        out["reason"] = parsed.reason
        return out

    async def _order(self, query: Any, first: str, second: str, rubric: str | None,
                     reference: str | None) -> dict[str, Any]:
        messages = self.template.build(query, first, second, rubric=rubric, reference=reference)
        if self.mode == "expected":
            return await self._expected_order(messages)
        return await self._sample_order(messages)

    # -- the comparison ------------------------------------------------------------------------
    def _meta(self, started: float, orders: list[dict[str, Any]]) -> dict[str, Any]:
        prompt = sum(o["tokens"][0] for o in orders)
        completion = sum(o["tokens"][1] for o in orders)
        views = []
        for label, o in zip(("ab", "ba"), orders):
            view: dict[str, Any] = {"order": label, "raw_output": o["raw_output"]}
            if "probabilities" in o:
                probs = o["probabilities"] if label == "ab" else {
                    _FLIP[s]: p for s, p in o["probabilities"].items()}
                view["probabilities"] = probs  # always in the caller's a/b terms
                view["verdict"] = decide(probs, self.tie_margin)
            else:
                view["parse_status"] = o["failure"].kind.value
            views.append(view)
        return {"mode": self.mode, "constrained": self.constrained,
                "both_orders": self.both_orders, "model": getattr(self.model, "name", ""),
                "latency_s": time.perf_counter() - started, "orders": views,
                "tokens": {"prompt": prompt, "completion": completion,
                           "total": prompt + completion}}

    def _failure(self, failure: ParseFailure, meta: dict[str, Any]) -> GraderError:
        meta.update(raw_output=failure.raw, parse_status=failure.kind.value,
                    error_type="ParseFailure", retryable=False)
        return GraderError(name=self.name, error=str(failure),
                           reason=f"the judge's output has no valid verdict ({failure.message})",
                           metadata=meta)

    async def _compare(self, query: Any, a: str, b: str, rubric: str | None,
                       reference: str | None, started: float) -> GraderResult:
        calls = [self._order(query, a, b, rubric, reference)]
        if self.both_orders:
            calls.append(self._order(query, b, a, rubric, reference))
        orders = list(await asyncio.gather(*calls))
        meta = self._meta(started, orders)
        for o in orders:
            if "failure" in o:
                return self._failure(o["failure"], meta)
        views = meta["orders"]
        probs = views[0]["probabilities"]
        if len(views) == 2:
            probs = {s: (views[0]["probabilities"][s] + views[1]["probabilities"][s]) / 2
                     for s in _SIDES}
            meta["orders_disagree"] = views[0]["verdict"] != views[1]["verdict"]
        preference = decide(probs, self.tie_margin)
        meta.update(probabilities=probs, parse_status="ok",
                    raw_output=orders[0]["raw_output"])
        reason = orders[0].get("reason", "")
        return GraderPreference(name=self.name, preference=preference,
                                probability=float(probs[preference]),
                                score=float(probs["a"] - probs["b"]), reason=reason,
                                metadata=meta)

    async def _aevaluate(self, query: Any = None, response_a: Any = None,
                         response_b: Any = None, *, rubric: str | None = None,
                         reference: str | None = None, **_: Any) -> GraderResult:
        started = time.perf_counter()
        problem = pair_input_problem(self.name, query, response_a, response_b, rubric,
                                     reference)
        if problem is not None:
            return problem
        try:
            return await self._compare(query, response_a, response_b, rubric,
                                       reference, started)
        except JudgeforgeError as exc:
            return GraderError(
                name=self.name, error=str(exc),
                reason=f"the model call failed ({type(exc).__name__})",
                metadata={"error_type": type(exc).__name__,
                          "retryable": isinstance(exc, ModelError),
                          "latency_s": time.perf_counter() - started})
