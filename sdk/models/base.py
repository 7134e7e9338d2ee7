"""The chat-model contract every judge model implements (OpenAI-compatible servers, mocks).

A grader only needs :meth:`ChatModel.achat`; the response carries text, optional logprobs,
token usage and latency, so graders can report cost and speed with every score.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["TokenLogprob", "ChatChoice", "Usage", "ChatResponse", "ChatModel", "Message"]

Message = dict[str, Any]  # {"role": ..., "content": ...}


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token with its logprob and the top alternatives (token -> logprob)."""

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatChoice:
    text: str
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatResponse:
    """A model's answer: ``choices`` (n of them), usage, wall latency and the model name."""

    choices: list[ChatChoice]
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    model: str = ""

    @property
    def text(self) -> str:
        """The first choice's text."""
        return self.choices[0].text if self.choices else ""


class ChatModel(abc.ABC):
    """An async chat model. Implementations must survive ``copy.deepcopy`` (runners copy graders).

    Options a server does not support are rejected with :class:`~judgeforge.errors.ConfigError`
    rather than silently dropped.
    """

    name: str = "model"

    @abc.abstractmethod
    async def achat(
        self,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        n: int = 1,
        seed: int | None = None,
        stop: list[str] | None = None,
        logprobs: bool = False,
        top_logprobs: int | None = None,
        prefill: str | None = None,
        regex: str | None = None,
        timeout: float | None = None,
    ) -> ChatResponse:
        """Generate ``n`` completions for ``messages``.

        ``prefill`` continues a final assistant message that starts with that text (vLLM
        ``continue_final_message``); ``regex`` constrains decoding (vLLM ``structured_outputs``).
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources (clients, managed servers)."""

    async def __aenter__(self) -> "ChatModel":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
