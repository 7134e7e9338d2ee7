"""The chat-model contract every judge model implements (OpenAI-compatible servers, mocks).

A grader only needs :meth:`ChatModel.achat`; the response carries text, optional logprobs,
token usage and latency, so graders can report cost and speed with every score.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from judgeforge.errors import ConfigError

__all__ = ["TokenLogprob", "ChatChoice", "Usage", "ChatResponse", "ChatOptions", "ChatModel",
           "ChatMessage"]

#: One OpenAI-style chat message as sent to a model: ``{"role": ..., "content": ...}`` (a plain
#: dict, so any extra key the server understands passes through). A record's validated turn is
#: :class:`judgeforge.data.schema.Message`; ``message.model_dump()`` is a ChatMessage.
ChatMessage = dict[str, Any]


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


@dataclass(frozen=True)
class ChatOptions:
    """The options of one :meth:`ChatModel.achat` call, as :meth:`ChatModel._generate` gets them."""

    temperature: float | None = None
    max_tokens: int | None = None
    n: int = 1
    seed: int | None = None
    stop: list[str] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    prefill: str | None = None
    regex: str | None = None
    timeout: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The options by name, in ``achat``'s order (the values themselves, not copies)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class ChatModel(abc.ABC):
    """An async chat model. Implementations must survive ``copy.deepcopy`` (runners copy graders).

    An implementation provides :meth:`_generate`; :meth:`achat` checks the arguments every model
    rejects alike and hands it the messages and a :class:`ChatOptions`. Options a server does
    not support are rejected with :class:`~judgeforge.errors.ConfigError` rather than silently
    dropped.
    """

    name: str = "model"

    async def achat(
        self,
        messages: Sequence[ChatMessage],
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
        Empty ``messages`` and ``n < 1`` raise :class:`~judgeforge.errors.ConfigError`.
        """
        if not messages:
            raise ConfigError("messages must not be empty")
        if n < 1:
            raise ConfigError("n must be >= 1")
        return await self._generate(messages, ChatOptions(
            temperature=temperature, max_tokens=max_tokens, n=n, seed=seed, stop=stop,
            logprobs=logprobs, top_logprobs=top_logprobs, prefill=prefill, regex=regex,
            timeout=timeout))

    @abc.abstractmethod
    async def _generate(self, messages: Sequence[ChatMessage],
                        options: ChatOptions) -> ChatResponse:
        """Generate ``options.n`` completions for ``messages`` (not empty; ``n >= 1``)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources (clients, managed servers)."""

    async def __aenter__(self) -> ChatModel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
