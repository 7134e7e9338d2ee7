"""A pointwise LLM grader: prompt template + chat model + ``<score>`` parser + scale.

Scoring modes:

- ``sample``: generate once and parse ``<score>X</score>`` (one tag per dimension).
- ``expected``: prefill ``<score>`` and read the next token's top logprobs; the score is the
  probability-weighted mean of the in-scale digits (renormalised over them). Needs a scale
  within 0-9 (one token per value). Several dimensions: one call per dimension, prefilled
  with that dimension's tag. ``constrained`` has no effect here.
- ``vote``: ``n`` samples in one call, combined by ``"mean"`` or ``"majority"``; samples that
  do not parse are counted in metadata and left out.

A trained judge's folder carries a judge card (``judge_config.json``):
:meth:`LLMGrader.from_pretrained` builds the grader it describes (the training prompt, scale and
limits, the default scoring settings and any calibration). ``calibration`` (a
:class:`~judgeforge.calibration.Calibration`) maps ``expected``-mode scores onto the scale;
``metadata["raw_score"]`` keeps the judge's own value.

``constrained=True`` constrains decoding to the answer format (``template.score_regex()``),
so a model that does not write the format on its own still produces a score; the output is
then the tags alone (no thinking, so ``reason`` is empty).

Failures are values: an unparsable output is a :class:`GraderError` with the raw text in
``metadata.raw_output`` and ``metadata.parse_status`` (never a 0); a failed model call (any
:class:`~judgeforge.errors.JudgeforgeError`) is a :class:`GraderError` with ``error_type`` and
``retryable`` (True for :class:`~judgeforge.errors.ModelError`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from judgeforge.data.schema import DEFAULT_SCALE, Scale
from judgeforge.errors import ConfigError, JudgeforgeError, ModelError
from judgeforge.graders.base import BaseGrader
from judgeforge.graders.results import GraderError, GraderResult, GraderScore
from judgeforge.models.base import ChatModel, ChatResponse, TokenLogprob
from judgeforge.parsing import (
    ParsedScore,
    ParseFailure,
    ParseFailureKind,
    checked_logprob,
    parse_score,
)
from judgeforge.prompt import PromptTemplate

if TYPE_CHECKING:
    from judgeforge.calibration import Calibration
    from judgeforge.card import JudgeCard

__all__ = ["LLMGrader", "ScoringMode", "VoteMethod", "SCORING_MODES"]

log = logging.getLogger(__name__)

ScoringMode = Literal["sample", "expected", "vote"]
VoteMethod = Literal["mean", "majority"]
SCORING_MODES: tuple[str, ...] = ("sample", "expected", "vote")
_INLINE_PARSE_CHARS = 8192  # longer outputs are parsed off the event loop


def _normalise(value: float, scale: Scale) -> float:
    return (value - scale.min) / scale.span


def _usage(resp: ChatResponse) -> tuple[int, int]:
    return resp.usage.prompt_tokens, resp.usage.completion_tokens


def _digit_distribution(first: TokenLogprob, scale: Scale) -> dict[int, float]:
    """Probability mass per in-scale digit among the first token's alternatives (unnormalised)."""
    top = dict(first.top)
    top.setdefault(first.token, first.logprob)
    mass: dict[int, float] = {}
    for token, logprob in top.items():
        text = token.strip()
        # ASCII digits only: '³' and '③' pass isdigit() but int() refuses them, and a
        # fullwidth '３' is not the token the judge was trained to write
        if len(text) == 1 and "0" <= text <= "9" and int(text) in scale:
            mass[int(text)] = mass.get(int(text), 0.0) + math.exp(checked_logprob(logprob, token))
    return mass


def _majority(values: Sequence[int]) -> int:
    """Most frequent value; ties go to the value closest to the mean, then the lower one."""
    counts = Counter(values)
    best = max(counts.values())
    tied = [v for v, c in counts.items() if c == best]
    mean = sum(values) / len(values)
    return min(tied, key=lambda v: (abs(v - mean), v))


class LLMGrader(BaseGrader):
    """Grades ``(query, response)`` with a judge model that writes ``<score>X</score>``.

    ``_aevaluate`` accepts ``query`` (text or chat messages), ``response``, optional ``rubric``
    and ``reference``; other keywords (a row's extra columns) are ignored. With one dimension
    ``score`` is that dimension's score; with several, ``score`` is their mean and
    ``metadata["scores"]`` holds each one.

    ``temperature=None`` means 0 for ``sample`` and 1.0 for ``vote``; ``max_tokens=None`` means
    256 (1024 with a thinking template).
    """

    def __init__(
        self,
        model: ChatModel,
        *,
        template: PromptTemplate | None = None,
        dimension: str = "helpfulness",
        scale: Scale = DEFAULT_SCALE,
        name: str | None = None,
        mode: ScoringMode = "sample",
        constrained: bool = False,
        n: int = 5,
        vote: VoteMethod = "mean",
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_logprobs: int = 20,
        seed: int | None = None,
        timeout: float | None = None,
        description: str = "",
        calibration: Calibration | None = None,
    ) -> None:
        template = template or PromptTemplate({dimension: scale})
        if calibration is not None and template.multi:
            raise ConfigError("a calibration maps one dimension's score; this template has "
                              f"{len(template.dimensions)} dimensions")
        default_name = next(iter(template.dimensions)) if not template.multi else "multi_dimension"
        super().__init__(name or default_name, description)
        if mode not in SCORING_MODES:
            raise ConfigError(f"mode must be one of {SCORING_MODES}, got {mode!r}")
        if vote not in ("mean", "majority"):
            raise ConfigError(f"vote must be 'mean' or 'majority', got {vote!r}")
        if mode == "vote" and n < 1:
            raise ConfigError(f"vote mode needs n >= 1, got {n}")
        if mode == "expected":
            for dim, sc in template.dimensions.items():
                if sc.min < 0 or sc.max > 9:
                    raise ConfigError(f"expected mode reads one digit token per value; the scale "
                                      f"{sc} of {dim!r} is not within 0-9")
        self.model = model
        self.template = template
        self.mode: ScoringMode = mode
        self.constrained = constrained
        self.n = n
        self.vote: VoteMethod = vote
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.top_logprobs = top_logprobs
        self.seed = seed
        self.timeout = timeout
        self.calibration = calibration

    # -- trained judges ------------------------------------------------------------------------
    @classmethod
    def from_card(cls, card: JudgeCard, model: ChatModel, **overrides: Any) -> LLMGrader:
        """The grader ``card`` describes, on ``model``.

        ``overrides`` win over the card: any LLMGrader keyword (``mode``, ``constrained``,
        ``temperature``, ``name``, ``calibration=None`` to grade raw...), any prompt setting
        (``thinking``, ``max_response_chars``..., ``dimensions``: a mapping to scales) and
        ``scale`` (every dimension's scale). The card's calibration is kept only while the
        dimensions and scales are the card's.
        """
        kw = card.grader_kwargs()
        template: PromptTemplate = kw.pop("template")
        prompt = {k: overrides.pop(k) for k in list(overrides)
                  if k in PromptTemplate.__dataclass_fields__}
        if "scale" in overrides:
            scale = overrides.pop("scale")
            prompt["dimensions"] = {d: scale for d in prompt.get("dimensions",
                                                                 template.dimensions)}
        if prompt:
            template = replace(template, **prompt)
        same_scales = dict(template.dimensions) == dict(card.dimensions)
        kw["calibration"] = card.calibration if same_scales else None
        kw.update(overrides)
        return cls(model, template=template, **kw)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike[str], model: ChatModel | None = None,
                        **overrides: Any) -> LLMGrader:
        """The grader for a trained judge's folder, as its card (``judge_config.json``) says.

        ``model`` defaults to a managed vLLM server for ``folder``
        (``OpenAIChatModel(model=folder, is_local=True)``, started on first use; close it with
        ``await grader.model.aclose()`` or ``async with grader.model``); pass an
        :class:`~judgeforge.models.openai_chat.OpenAIChatModel` to use a running server. A verl
        checkpoint is merged first (its merged folder holds the card). A folder without a card
        gets today's default grader (helpfulness, 0-4). ``overrides``:
        see :meth:`from_card`.
        """
        from judgeforge.card import JudgeCard
        from judgeforge.models.resolve import resolve_model_path

        path = resolve_model_path(folder)  # a verl checkpoint: its merged folder
        card = JudgeCard.read(path)
        if model is None:
            from judgeforge.models.openai_chat import OpenAIChatModel

            model = OpenAIChatModel(model=os.fspath(path), is_local=True)
        if card is None:
            log.warning("%s has no judge card (judge_config.json): grading with the default "
                        "prompt", folder)
            return cls(model, **overrides)
        return cls.from_card(card, model, **overrides)

    # -- helpers -------------------------------------------------------------------------------
    @property
    def dimensions(self) -> Mapping[str, Scale]:
        return self.template.dimensions

    def build_messages(self, query: Any, response: str, rubric: str | None = None,
                       reference: str | None = None) -> list[dict[str, str]]:
        """The judge messages for one input (override to customise the prompt)."""
        return self.template.build(query, response, rubric=rubric, reference=reference)

    def _gen_kwargs(self, n: int = 1) -> dict[str, Any]:
        temperature = self.temperature
        if temperature is None:
            temperature = 1.0 if self.mode == "vote" else 0.0
        max_tokens = self.max_tokens or (1024 if self.template.thinking else 256)
        kw: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens, "n": n,
                              "seed": self.seed, "timeout": self.timeout}
        if self.constrained:
            kw["regex"] = self.template.score_regex()
        else:
            last_tag = list(self.template.tags().values())[-1]
            kw["stop"] = [f"</{last_tag}>"]
        return kw

    def _meta(self, started: float, tokens: tuple[int, int], **extra: Any) -> dict[str, Any]:
        prompt, completion = tokens
        meta: dict[str, Any] = {
            "mode": self.mode, "constrained": self.constrained,
            "model": getattr(self.model, "name", ""),
            "latency_s": time.perf_counter() - started,
            "tokens": {"prompt": prompt, "completion": completion, "total": prompt + completion},
        }
        meta.update(extra)
        return meta

    def _parse_error(self, failure: ParseFailure, meta: dict[str, Any]) -> GraderError:
        meta.update(raw_output=failure.raw, parse_status=failure.kind.value,
                    error_type="ParseFailure", retryable=False)
        if failure.partial:
            meta["partial"] = dict(failure.partial)
        return GraderError(name=self.name, error=str(failure),
                           reason=f"the judge's output has no valid score ({failure.message})",
                           metadata=meta)

    def _calibrated(self, value: float, scale: Scale, meta: dict[str, Any]) -> float:
        """The calibration's map of ``value``, kept on ``scale`` (a judge card refuses a map
        that leaves it; one built in code is clamped, and ``calibration_clamped`` says so)."""
        assert self.calibration is not None
        mapped = self.calibration(value)
        kept = min(float(scale.max), max(float(scale.min), mapped))
        if kept != mapped:
            meta["calibration_clamped"] = mapped
        return kept

    def _score(self, scores: Mapping[str, float], reason: str, meta: dict[str, Any]) -> GraderScore:
        if self.calibration is not None and self.mode == "expected":
            raw = next(iter(scores.values()))
            meta.update(raw_score=raw, calibrated=True)
            scores = {d: self._calibrated(v, self.dimensions[d], meta)
                      for d, v in scores.items()}
        normalised = {d: _normalise(v, self.dimensions[d]) for d, v in scores.items()}
        if len(scores) == 1:
            value = next(iter(scores.values()))
            meta["normalized_score"] = next(iter(normalised.values()))
        else:
            value = sum(scores.values()) / len(scores)
            meta["normalized_score"] = sum(normalised.values()) / len(normalised)
            meta["scores"] = dict(scores)
            meta["normalized_scores"] = normalised
        meta.setdefault("parse_status", "ok")
        return GraderScore(name=self.name, score=float(value), reason=reason, metadata=meta)

    # -- modes ---------------------------------------------------------------------------------
    async def _parse(self, texts: list[str]) -> list[ParsedScore | ParseFailure]:
        """``parse_score`` of each text; long outputs are parsed in a worker thread, so a service
        grading many requests on one event loop keeps answering (``/healthz``) meanwhile."""
        def parse() -> list[ParsedScore | ParseFailure]:
            return [parse_score(t, dimensions=self.dimensions) for t in texts]

        if sum(len(t or "") for t in texts) <= _INLINE_PARSE_CHARS:
            return parse()
        return await asyncio.to_thread(parse)

    async def _sample(self, messages: list[dict[str, str]], started: float) -> GraderResult:
        resp = await self.model.achat(messages, **self._gen_kwargs())
        parsed = (await self._parse([resp.text]))[0]
        meta = self._meta(started, _usage(resp), raw_output=resp.text)
        if isinstance(parsed, ParseFailure):
            return self._parse_error(parsed, meta)
        return self._score(parsed.scores, parsed.reason, meta)

    async def _vote(self, messages: list[dict[str, str]], started: float) -> GraderResult:
        resp = await self.model.achat(messages, **self._gen_kwargs(n=self.n))
        texts = [c.text for c in resp.choices]
        parsed = await self._parse(texts)
        good = [p for p in parsed if isinstance(p, ParsedScore)]
        meta = self._meta(started, _usage(resp), raw_output=texts, vote=self.vote,
                          n=len(texts), n_failed=len(texts) - len(good))
        if not good:
            failures = [p for p in parsed if isinstance(p, ParseFailure)]
            first = failures[0] if failures else ParseFailure(
                ParseFailureKind.NO_SCORE, "the model returned no choices", raw="")
            err = self._parse_error(first, meta)
            err.metadata["raw_output"] = texts
            return err
        scores: dict[str, float] = {}
        for dim in self.dimensions:
            votes = [p.scores[dim] for p in good]
            scores[dim] = (sum(votes) / len(votes)) if self.vote == "mean" else _majority(votes)
        meta["votes"] = [dict(p.scores) for p in good]
        return self._score(scores, good[0].reason, meta)

    async def _expected_one(self, messages: list[dict[str, str]], tag: str, scale: Scale
                            ) -> tuple[ChatResponse, dict[int, float]]:
        resp = await self.model.achat(messages, prefill=f"<{tag}>", max_tokens=1, logprobs=True,
                                      top_logprobs=self.top_logprobs, temperature=0.0,
                                      seed=self.seed, timeout=self.timeout)
        lps = resp.choices[0].logprobs if resp.choices else None
        if not lps:  # a capability the server lacks: retrying will not help
            raise ConfigError("the server returned no logprobs; expected-score mode needs "
                              "logprobs/top_logprobs support")
        return resp, _digit_distribution(lps[0], scale)

    async def _expected(self, messages: list[dict[str, str]], started: float) -> GraderResult:
        tags = self.template.tags()
        dims = list(self.dimensions)
        calls = [self._expected_one(messages, tags[d], self.dimensions[d]) for d in dims]
        outs = await asyncio.gather(*calls) if len(calls) > 1 else [await calls[0]]
        prompt = sum(r.usage.prompt_tokens for r, _ in outs)
        completion = sum(r.usage.completion_tokens for r, _ in outs)
        raw = {d: f"<{tags[d]}>{r.text}" for d, (r, _) in zip(dims, outs)}  # prefill + token
        meta = self._meta(started, (prompt, completion),
                          raw_output=raw[dims[0]] if len(dims) == 1 else raw)
        scores: dict[str, float] = {}
        dists: dict[str, dict[str, float]] = {}
        argmax: dict[str, int] = {}
        mass: dict[str, float] = {}
        for dim, (_, dist) in zip(dims, outs):
            total = sum(dist.values())
            if total <= 0.0:
                failure = ParseFailure(ParseFailureKind.NO_SCORE,
                                       f"{dim}: no in-scale digit among the top "
                                       f"{self.top_logprobs} tokens after <{tags[dim]}>",
                                       raw=raw[dim], partial={})
                return self._parse_error(failure, meta)
            probs = {v: p / total for v, p in sorted(dist.items())}
            scores[dim] = sum(v * p for v, p in probs.items())
            dists[dim] = {str(v): p for v, p in probs.items()}
            argmax[dim] = max(probs, key=lambda v: probs[v])
            mass[dim] = total
        if len(dims) == 1:
            meta.update(distribution=dists[dims[0]], argmax=argmax[dims[0]],
                        score_mass=mass[dims[0]])
        else:
            meta.update(distribution=dists, argmax=argmax, score_mass=mass)
        reason = "expected score from the judge's score-token probabilities"
        return self._score(scores, reason, meta)

    # -- entry point ---------------------------------------------------------------------------
    async def _aevaluate(self, query: Any = None, response: Any = None, *,
                         rubric: str | None = None, reference: str | None = None,
                         **_: Any) -> GraderResult:
        started = time.perf_counter()
        missing = [k for k, v in (("query", query), ("response", response)) if v is None]
        if missing:
            return GraderError(name=self.name, error=f"missing input(s): {', '.join(missing)}",
                               reason="the grader needs a query and a response",
                               metadata={"error_type": "MissingInput", "retryable": False})
        messages = self.build_messages(query, str(response), rubric=rubric, reference=reference)
        try:
            if self.mode == "expected":
                return await self._expected(messages, started)
            if self.mode == "vote":
                return await self._vote(messages, started)
            return await self._sample(messages, started)
        except JudgeforgeError as exc:
            return GraderError(
                name=self.name, error=str(exc),
                reason=f"the model call failed ({type(exc).__name__})",
                metadata={"error_type": type(exc).__name__,
                          "retryable": isinstance(exc, ModelError),
                          "latency_s": time.perf_counter() - started})

