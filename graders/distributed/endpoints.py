"""Backend (a): the Ray Data actor that grades batches against replicas of one judge.

Each actor of the pool holds one copy of the grader per endpoint, each with its own
:class:`~judgeforge.models.openai_chat.OpenAIChatModel` (so its own retries and its own cap on
requests in flight: ``per_endpoint_concurrency``). A row goes to the endpoint with the fewest
requests in flight among those not cooling down; a transport failure (a retryable error value,
after the model's own retries) marks that endpoint down for ``cooldown_s`` and sends the row to
the next one, so a dead replica costs its in-flight rows one retry, not the job. The evaluation
itself is the runner's (:meth:`GradingRunner._evaluate`: mapper, exceptions as values), on the
grader the caller built -- request building, modes, constrained decoding and parsing are the
grader's own code.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from judgeforge.graders.distributed.rows import InputRow, decode_batch
from judgeforge.graders.distributed.shards import result_row, results_table
from judgeforge.graders.results import is_error

__all__ = ["Endpoint", "GradeBatches", "detach_model"]


def detach_model(grader: Any) -> Any:
    """A shallow copy of ``grader`` without its model (clients and locks do not pickle)."""
    blob = copy.copy(grader)
    blob.model = None
    return blob


@dataclass
class Endpoint:
    """One replica as an actor sees it."""

    url: str
    grader: Any
    in_flight: int = 0
    down_until: float = 0.0
    served: int = 0
    failed: int = 0


class GradeBatches:
    """The ``map_batches`` callable class (one instance per actor; batches run concurrently).

    ``grader``: the grader without its model (:func:`detach_model`); ``model_options``: keyword
    arguments for ``OpenAIChatModel`` besides ``base_url``/``max_concurrency``; ``plan``: the
    driver's :class:`~judgeforge.graders.distributed.job.GradePlan` (or a Ray reference to it):
    which rows to grade, under which keys; the rest are skipped here.
    """

    def __init__(self, grader: Any, name: str, endpoints: Sequence[str],
                 model_options: Mapping[str, Any], per_endpoint_concurrency: int, fmt: str,
                 plan: Any, run_id: str, cooldown_s: float = 5.0) -> None:
        import ray

        from judgeforge.graders.runner import GradingRunner
        from judgeforge.models.openai_chat import OpenAIChatModel

        if isinstance(plan, ray.ObjectRef):
            plan = ray.get(plan)
        self.name = name
        self.fmt = fmt
        self.plan = plan
        self.run_id = run_id
        self.cooldown_s = cooldown_s
        self.endpoints = []
        for url in endpoints:
            g = copy.copy(grader)
            g.model = OpenAIChatModel(base_url=url, max_concurrency=per_endpoint_concurrency,
                                      **dict(model_options))
            self.endpoints.append(Endpoint(url, g))
        self._runner = GradingRunner([self.endpoints[0].grader], show_progress=False)

    def _pick(self, tried: set[int]) -> int:
        now = time.monotonic()
        idx = [i for i in range(len(self.endpoints)) if i not in tried] or \
            list(range(len(self.endpoints)))
        up = [i for i in idx if self.endpoints[i].down_until <= now]
        if up:
            return min(up, key=lambda i: self.endpoints[i].in_flight)
        return min(idx, key=lambda i: self.endpoints[i].down_until)

    async def _grade(self, row: InputRow, key: str, row_fp: str) -> dict[str, Any]:
        from judgeforge.graders.runner import GraderConfig

        fps = {"row_fp": row_fp, "config_fp": self.plan.config_fp}
        if row.error is not None:
            row.error.name = self.name
            return result_row(key, self.name, row.error, endpoint=None, run_id=self.run_id,
                              **fps)
        tried: set[int] = set()
        result: Any = None
        url: str | None = None
        for _ in range(len(self.endpoints)):
            i = self._pick(tried)
            ep = self.endpoints[i]
            tried.add(i)
            ep.in_flight += 1
            try:
                result = await self._runner._evaluate(
                    self.name, GraderConfig(ep.grader, row.mapper), row.row, f"row {key!r}")
            finally:
                ep.in_flight -= 1
            url = ep.url
            if is_error(result) and getattr(result, "metadata", {}).get("retryable"):
                ep.failed += 1
                ep.down_until = time.monotonic() + self.cooldown_s
                continue  # a transport failure: the next replica
            ep.served += 1
            break
        return result_row(key, self.name, result, endpoint=url, run_id=self.run_id, **fps)

    async def __call__(self, batch: Any) -> Any:
        jobs, seen = [], set()
        for row in decode_batch(batch, self.fmt):
            if (row.key, row.content_fp) in seen:  # an exact repeat: its keys are planned once
                continue
            seen.add((row.key, row.content_fp))
            jobs += [(row, key, row_fp) for key, row_fp in self.plan.rows_for(row)]
        out = await asyncio.gather(*(self._grade(*job) for job in jobs))
        return results_table(list(out))
