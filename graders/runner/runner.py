"""GradingRunner: run graders over a dataset concurrently, crash-safely, in order.

Compatible with OpenJudge's ``GradingRunner`` (constructor and ``arun``), plus checkpointing:
with ``output``, each result is appended to a JSONL file as it finishes, and a rerun with the
same file skips the (row, grader) pairs already there.

Rerun policy: a stored score is final; a stored error is final too (parse failures, missing
mapper paths), except an error marked ``metadata.retryable`` -- transport failures
(:class:`~judgeforge.errors.ModelError`) and unexpected exceptions -- which a rerun grades again
(``retry_errors=False`` keeps them). At the end the file is compacted to one line per (row,
grader), row by row in dataset order.

A stored result is reused only for the same row content and the same grading configuration
(the line's ``row_fp``/``config_fp``, see :mod:`judgeforge.graders.runner.checkpoint`). A
stale one (the row's text changed, or the grader's mode, scale, prompt or model did; or a line
written before fingerprints existed) is graded again and counted in ``RunSummary.stale``;
``on_stale="refuse"`` raises a :class:`~judgeforge.errors.ConfigError` instead, before any
grading. Unusable lines in the file are reported (``RunSummary.bad_lines``) and their rows
graded again.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from judgeforge.data.keys import unique_ids
from judgeforge.errors import ConfigError, DataError, JudgeforgeError, ModelError
from judgeforge.graders.results import GraderError, from_dict, is_error, is_score, to_dict
from judgeforge.graders.runner.checkpoint import (
    Checkpoint,
    FsyncMode,
    grader_fingerprint,
    resume_decision,
    row_fingerprint,
    row_keys,
    stale_error,
)
from judgeforge.graders.runner.config import GraderConfig, MappingError, apply_mapper
from judgeforge.parsing import finite_score

__all__ = ["GradingRunner", "RunSummary"]

log = logging.getLogger(__name__)

RunnerResult = dict[str, list[Any]]


@dataclass
class RunSummary:
    """Counts of one ``arun``: (row, grader) pairs graded now, failed now, and reused."""

    rows: int = 0
    graders: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    stale: int = 0
    bad_lines: int = 0
    torn_lines: int = 0
    output: str | None = None

    @property
    def total(self) -> int:
        return self.rows * self.graders

    def __str__(self) -> str:
        text = (f"{self.rows} row(s) x {self.graders} grader(s): done {self.done}, failed "
                f"{self.failed}, skipped {self.skipped} (already in the output)")
        if self.stale:
            text += (f", {self.stale} stale result(s) regraded (row or grading configuration "
                     "changed)")
        if self.bad_lines:
            text += f", {self.bad_lines} unusable result line(s) ignored"
        if self.retried:
            text += f", {self.retried} earlier error(s) retried"
        if self.torn_lines:
            text += f", {self.torn_lines} torn line(s) redone"
        return text + (f" -> {self.output}" if self.output else "")


def _error(name: str, exc: BaseException, reason: str, retryable: bool) -> GraderError:
    return GraderError(name=name, error=f"{type(exc).__name__}: {exc}", reason=reason,
                       metadata={"error_type": type(exc).__name__, "retryable": retryable})


class GradingRunner:
    """Runs ``grader_configs`` over a dataset; every failure is a value, order is kept.

    ``grader_configs``: ``{key: GraderConfig | grader | (grader, mapper)}`` (a list names each
    by ``grader.name``). ``max_concurrency`` caps (row, grader) evaluations in flight.
    ``aggregators``: callables ``{key: result} -> result`` (e.g. :class:`WeightedMean`), each
    adding a column named by its ``name``. ``output``: JSONL checkpoint path (see module doc);
    ``fsync``: ``"batch"`` (background group fsync), ``"line"`` (fsync each line before going
    on) or ``"off"`` (see :mod:`judgeforge.graders.runner.checkpoint`). ``key``: a row -> key
    function replacing :func:`~judgeforge.graders.runner.checkpoint.row_key`.
    """

    def __init__(
        self,
        grader_configs: Mapping[str, Any] | Sequence[Any],
        max_concurrency: int = 32,
        aggregators: Any = None,
        show_progress: bool = True,
        *,
        output: str | os.PathLike[str] | None = None,
        retry_errors: bool = True,
        fsync: FsyncMode | bool = "batch",
        key: Callable[[Any], str] | None = None,
        progress_desc: str = "Grading",
        on_stale: str = "regrade",
    ) -> None:
        if max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be >= 1, got {max_concurrency}")
        items: Iterable[tuple[Any, Any]]
        if isinstance(grader_configs, Mapping):
            items = grader_configs.items()
        else:
            items = ((GraderConfig.create(c).grader.name, c) for c in grader_configs)
        self.grader_configs = {str(k): GraderConfig.create(c) for k, c in items}
        if not self.grader_configs:
            raise ConfigError("grader_configs is empty")
        self.max_concurrency = max_concurrency
        if aggregators is None:
            self.aggregators: list[Any] = []
        elif callable(aggregators):
            self.aggregators = [aggregators]
        else:
            self.aggregators = list(aggregators)
        self.show_progress = show_progress
        self.output = output
        self.retry_errors = retry_errors
        self.fsync = fsync
        self.key = key
        self.progress_desc = progress_desc
        if on_stale not in ("regrade", "refuse"):
            raise ConfigError(f"on_stale must be 'regrade' or 'refuse', not {on_stale!r}")
        self.on_stale = on_stale
        self.summary: RunSummary | None = None
        self._fps: dict[tuple[str, int], tuple[str, str]] = {}

    # -- one evaluation ------------------------------------------------------------------------
    async def _evaluate(self, name: str, config: GraderConfig, row: Any,
                        where: str | None = None) -> Any:
        """One (row, grader) value; ``where`` (e.g. ``"row 3"``) prefixes a bad-input error."""
        grader = config.grader
        gname = str(getattr(grader, "name", "") or name)
        try:
            kwargs = apply_mapper(row, config.mapper)
        except MappingError as exc:
            text = f"{where}: {exc}" if where else str(exc)
            return GraderError(name=gname, error=text, reason="the row lacks a usable grader "
                               "input", metadata={"error_type": "MappingError",
                                                  "retryable": False})
        if getattr(grader, "stateful", False):
            grader = copy.deepcopy(grader)
        try:
            result = await grader.aevaluate(**kwargs)
        except asyncio.CancelledError:
            raise
        except ModelError as exc:
            return _error(gname, exc, f"the model call failed in {gname}", True)
        except JudgeforgeError as exc:  # bad input (e.g. a role that is not a chat role): final
            return _error(gname, exc, f"{gname} cannot grade this row", False)
        except Exception as exc:  # a grader bug or a foreign grader's failure: a value, not a stop
            log.debug("grader %s raised", gname, exc_info=True)
            return _error(gname, exc, f"{gname} raised during evaluation", True)
        if not (is_score(result) or is_error(result)):
            return GraderError(name=gname, error=f"grader returned {type(result).__name__}, "
                               "not a score or an error", reason="unexpected result type",
                               metadata={"error_type": "TypeError", "retryable": False})
        if is_score(result):
            try:
                finite_score(result.score, what=f"{gname} score")
            except DataError as exc:
                return _error(gname, exc, f"{gname} returned an unusable score", False)
        return result

    # -- the batch -----------------------------------------------------------------------------
    def _keys(self, rows: Sequence[Any]) -> list[str]:
        if self.key is None:
            return row_keys(rows)
        return unique_ids([str(self.key(r)) for r in rows])

    def _plan(self, rows: Sequence[Any], keys: list[str] | None, ck: Checkpoint | None,
              results: RunnerResult, summary: RunSummary) -> list[tuple[str, int]]:
        jobs: list[tuple[str, int]] = []
        stale: list[str] = []
        for name, config in self.grader_configs.items():
            config_fp = grader_fingerprint(config.grader) if ck else ""
            for i in range(len(rows)):
                entry = ck.entries.get((keys[i], name)) if ck and keys else None
                if ck is not None:
                    self._fps[(name, i)] = (row_fingerprint(rows[i], config.mapper), config_fp)
                if entry is not None:
                    assert keys is not None  # an entry is looked up by its key
                    decision, what = resume_decision(entry, self._fps[(name, i)],
                                                     self.retry_errors)
                    if decision == "stale":
                        stale.append(f"row {keys[i]!r} x {name!r}: the {what} changed")
                        summary.stale += 1
                    elif decision == "reuse":
                        results[name][i] = from_dict(entry.result)
                        summary.skipped += 1
                        continue
                    else:
                        summary.retried += 1
                jobs.append((name, i))
        if stale and self.on_stale == "refuse":
            raise stale_error(ck.path if ck else "", stale)
        return jobs

    async def arun(self, dataset: Iterable[Any], *,
                   output: str | os.PathLike[str] | None = None) -> RunnerResult:
        """Grade every row with every grader: ``{config_key: [result per row, in order]}``.

        ``output`` overrides the constructor's checkpoint path for this run.
        """
        rows = dataset if isinstance(dataset, Sequence) else list(dataset)
        path = output if output is not None else self.output
        summary = RunSummary(rows=len(rows), graders=len(self.grader_configs),
                             output=str(path) if path is not None else None)
        self.summary = summary
        self._fps = {}
        results: RunnerResult = {name: [None] * len(rows) for name in self.grader_configs}
        ck = Checkpoint(path, fsync=self.fsync) if path is not None else None
        keys = self._keys(rows) if ck is not None else None
        if ck is not None:
            ck.open()
            summary.torn_lines = ck.torn_lines
            summary.bad_lines = ck.bad_lines
        try:
            jobs = self._plan(rows, keys, ck, results, summary)
            await self._run_jobs(jobs, rows, keys, ck, results, summary)
            if ck is not None and ck.needs_compaction:
                assert keys is not None
                ck.compact((k, name) for k in keys for name in self.grader_configs)
        finally:
            if ck is not None:
                ck.close()
        self._aggregate(results, len(rows))
        log.info("%s", summary)
        return results

    async def _run_jobs(self, jobs: list[tuple[str, int]], rows: Sequence[Any],
                        keys: list[str] | None, ck: Checkpoint | None, results: RunnerResult,
                        summary: RunSummary) -> None:
        bar = None
        if self.show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=summary.total, initial=summary.skipped, desc=self.progress_desc,
                       unit="row", dynamic_ncols=True)
        configs = self.grader_configs
        pending = iter(jobs)

        async def worker() -> None:
            for name, i in pending:
                label = f"row {i}" + (f" (key {keys[i]!r})" if keys is not None else "")
                result = await self._evaluate(name, configs[name], rows[i], label)
                results[name][i] = result
                if is_error(result):
                    summary.failed += 1
                else:
                    summary.done += 1
                if ck is not None and keys is not None:
                    row_fp, config_fp = self._fps[(name, i)]
                    ck.append(keys[i], name, i, to_dict(result), row_fp=row_fp,
                              config_fp=config_fp)
                if bar is not None:
                    bar.update(1)

        try:
            n_workers = min(self.max_concurrency, len(jobs))
            if n_workers:
                await asyncio.gather(*(worker() for _ in range(n_workers)))
        finally:
            if bar is not None:
                bar.close()

    def _aggregate(self, results: RunnerResult, n_rows: int) -> None:
        names = list(self.grader_configs)
        for agg in self.aggregators:
            agg_name = str(getattr(agg, "name", None) or getattr(agg, "__name__", "aggregate"))
            column = []
            for i in range(n_rows):
                try:
                    column.append(agg({n: results[n][i] for n in names}))
                except Exception as exc:  # an aggregator bug must not lose the graded results
                    column.append(_error(agg_name, exc, "aggregation failed", False))
            results[agg_name] = column

    def run(self, dataset: Iterable[Any], *,
            output: str | os.PathLike[str] | None = None) -> RunnerResult:
        """Synchronous :meth:`arun` (not inside a running event loop)."""
        return asyncio.run(self.arun(dataset, output=output))
