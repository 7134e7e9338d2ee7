"""ScriptedChatModel: a deterministic :class:`ChatModel` whose replies are scripted.

For grader tests where the real small model cannot produce the case under test (a reply that
echoes an injected ``<score>``, a malformed reply, a fixed sequence of scores). It honours the
same contract as :class:`~judgeforge.models.openai_chat.OpenAIChatModel`: ``n`` choices, usage
(whitespace tokens), latency, ``prefill`` (the returned text is the continuation: a reply that
starts with the prefill has it stripped), logprobs and :class:`ConfigError` for options left out of
``capabilities``.

    ScriptedChatModel(["<score>3</score>", "<score>4</score>"])   # replies in turn (cycling)
    ScriptedChatModel.echo()                                      # echoes the last user message
    ScriptedChatModel(lambda messages: "...")                     # any function of the messages

A reply may also be a :class:`ChatChoice` (for scripted logprobs or finish reasons). Requested
logprobs for a plain string reply are one token per character with logprob 0.0. ``regex`` is
recorded but not enforced (the script decides what comes back). Every call is recorded in
``calls``; deep copies share the script position and the call log.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from judgeforge.errors import ConfigError
from judgeforge.models.base import (
    ChatChoice,
    ChatMessage,
    ChatModel,
    ChatOptions,
    ChatResponse,
    TokenLogprob,
    Usage,
)

__all__ = ["ScriptedChatModel", "ScriptedCall"]

Reply = str | ChatChoice
ReplyFn = Callable[[list[ChatMessage]], Reply | Sequence[Reply]]
ALL_CAPABILITIES = frozenset({"n", "seed", "stop", "logprobs", "top_logprobs", "prefill", "regex"})


@dataclass(frozen=True)
class ScriptedCall:
    """One recorded call: the messages as sent (prefill appended) and the options."""

    messages: list[ChatMessage]
    options: dict[str, Any]


@dataclass
class _Script:
    replies: list[Reply] | None
    fn: ReplyFn | None
    cycle: bool
    position: int = 0
    calls: list[ScriptedCall] = field(default_factory=list)


def _count_tokens(text: str) -> int:
    return len(text.split())


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


class ScriptedChatModel(ChatModel):
    """A chat model that answers from a script (a list of replies or a function of messages)."""

    def __init__(
        self,
        replies: Sequence[Reply] | ReplyFn | None = None,
        *,
        name: str = "scripted",
        cycle: bool = True,
        delay_s: float = 0.0,
        capabilities: frozenset[str] | set[str] = ALL_CAPABILITIES,
    ) -> None:
        """``replies``: a list (served in turn; ``cycle`` restarts it, else it must not run out),
        a function ``messages -> reply | [replies]``, or None to echo the last user message.
        ``delay_s`` sleeps per call (to exercise concurrency)."""
        if replies is None:
            fn: ReplyFn | None = _echo_last_user
            lst = None
        elif callable(replies):
            fn, lst = replies, None
        else:
            fn, lst = None, list(replies)
            if not lst:
                raise ConfigError("ScriptedChatModel needs at least one reply")
        self.name = name
        self.delay_s = delay_s
        self.capabilities = frozenset(capabilities)
        self._script = _Script(replies=lst, fn=fn, cycle=cycle)

    @classmethod
    def echo(cls, **kw: Any) -> ScriptedChatModel:
        """A model that replies with the last user message (score-injection tests)."""
        return cls(None, **kw)

    @property
    def calls(self) -> list[ScriptedCall]:
        """Every call so far (shared with deep copies)."""
        return self._script.calls

    def __deepcopy__(self, memo: dict[int, Any]) -> ScriptedChatModel:
        new = copy.copy(self)  # shares the script (position and call log)
        memo[id(self)] = new
        return new

    def _next(self, messages: list[ChatMessage], n: int) -> list[Reply]:
        s = self._script
        if s.fn is not None:
            out: list[Reply] = []
            while len(out) < n:
                r = s.fn(messages)
                out.extend([r] if isinstance(r, (str, ChatChoice)) else list(r))
            return out[:n]
        assert s.replies is not None
        picked = []
        for _ in range(n):
            if s.position >= len(s.replies):
                if not s.cycle:
                    raise ConfigError(f"ScriptedChatModel ran out of its {len(s.replies)} replies")
                s.position = 0
            picked.append(s.replies[s.position])
            s.position += 1
        return picked

    async def _generate(self, messages: Sequence[ChatMessage],
                        options: ChatOptions) -> ChatResponse:
        """Return the next scripted replies (continuation only when ``prefill`` is given)."""
        t0 = time.perf_counter()
        o = options
        used = {"prefill": o.prefill, "regex": o.regex, "seed": o.seed, "stop": o.stop,
                "top_logprobs": o.top_logprobs, "logprobs": o.logprobs or None,
                "n": o.n if o.n != 1 else None}
        for opt, val in used.items():
            if val is not None and opt not in self.capabilities:
                raise ConfigError(f"{opt}= is not supported by {self.name!r}")
        msgs = [dict(m) for m in messages]
        if o.prefill is not None:
            msgs.append({"role": "assistant", "content": o.prefill})
        self._script.calls.append(ScriptedCall(messages=msgs, options=o.as_dict()))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        replies = self._next(msgs, o.n)
        want_lp = o.logprobs or o.top_logprobs is not None
        choices = [_to_choice(r, o.prefill, o.stop, o.max_tokens, want_lp) for r in replies]
        prompt_tokens = sum(_count_tokens(_content_text(m.get("content"))) for m in msgs)
        usage = Usage(prompt_tokens=prompt_tokens,
                      completion_tokens=sum(_count_tokens(c.text) for c in choices))
        return ChatResponse(choices=choices, usage=usage, latency_s=time.perf_counter() - t0,
                            model=self.name)


def _echo_last_user(messages: list[ChatMessage]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return _content_text(m.get("content"))
    return ""


def _to_choice(reply: Reply, prefill: str | None, stop: list[str] | None,
               max_tokens: int | None, want_logprobs: bool) -> ChatChoice:
    if isinstance(reply, ChatChoice):
        return reply
    text, finish = reply, "stop"
    if prefill and text.startswith(prefill):
        text = text[len(prefill):]
    for s in stop or []:
        if s and s in text:
            text = text[: text.index(s)]
    if max_tokens is not None:
        words = text.split(" ")
        if len(words) > max_tokens:
            text, finish = " ".join(words[:max_tokens]), "length"
    lps = [TokenLogprob(token=ch, logprob=0.0, top={ch: 0.0}) for ch in text] \
        if want_logprobs else None
    return ChatChoice(text=text, finish_reason=finish, logprobs=lps)
