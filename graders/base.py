"""The grader contract: ``await grader.aevaluate(query=..., response=...)`` -> score or error.

Compatible with OpenJudge's runner: ``aevaluate(executor=None, **kwargs)`` submits the work to
an OpenJudge resource executor (``await executor.submit(fn, **kwargs)``) when one is given, so
the executor's concurrency cap applies; graders survive ``copy.deepcopy`` (OpenJudge's runner
copies the grader for every row).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from judgeforge.errors import StateError
from judgeforge.graders.results import GraderResult

__all__ = ["BaseGrader", "Executor"]


class Executor(Protocol):
    """OpenJudge's resource-executor interface (``SemaphoreResourceExecutor`` and friends)."""

    async def submit(self, fn: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any: ...


class BaseGrader(abc.ABC):
    """Base of every judgeforge grader.

    Subclasses implement :meth:`_aevaluate`. Set ``stateful = True`` on a grader that keeps
    per-evaluation state in ``self``: judgeforge's runner then deep-copies it for each row (it
    does not otherwise, to keep per-row overhead small).
    """

    stateful: bool = False

    def __init__(self, name: str, description: str = "") -> None:
        self.name = name
        self.description = description

    @abc.abstractmethod
    async def _aevaluate(self, **kwargs: Any) -> GraderResult:
        """Grade one input. Must return a value (score or error) for expected failures."""

    async def aevaluate(self, executor: Executor | None = None, **kwargs: Any) -> GraderResult:
        """Grade one input; with an OpenJudge-style ``executor``, run under its control."""
        if executor is None:
            return await self._aevaluate(**kwargs)
        return await executor.submit(self._aevaluate, **kwargs)

    def evaluate(self, **kwargs: Any) -> GraderResult:
        """Synchronous :meth:`aevaluate` (runs its own event loop).

        Raises ``RuntimeError`` inside a running event loop: ``await aevaluate(...)`` there.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.aevaluate(**kwargs))
        raise StateError(f"{type(self).__name__}.evaluate() was called inside a running event "
                           "loop; use `await grader.aevaluate(...)` instead")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
