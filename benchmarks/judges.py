"""Judge specs for the benchmarks: ``--model URL|PATH|default``, optionally labelled ``name=...``.

The string is read by :func:`judgeforge.models.spec.parse_model_spec` (the parser every command
uses); a folder's judge card (:class:`~judgeforge.card.JudgeCard`) gives its prompt
(:meth:`JudgeSpec.template`).

- ``http://host:port[/v1]``: an OpenAI-compatible server; the served model name comes from
  ``--model-name`` or the server's ``/v1/models`` (``/v1`` is appended when the URL has no path).
- a folder path: a local Hugging Face checkpoint, served by a managed vLLM server
  (``OpenAIChatModel(is_local=True)``), started when the judge is opened and stopped when it closes.
- ``default``: the prepared default model (SmolLM2), also served by a managed vLLM server.
- ``name=<any of the above>``: the same, labelled ``name`` in tables and result files.

Judges are opened one at a time (:func:`open_judge`), so several local checkpoints never hold a
server each at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError
from judgeforge.models.spec import parse_model_spec

__all__ = ["JudgeSpec", "parse_judge_spec", "parse_judge_specs", "make_model", "open_judge",
           "served_model_name", "server_root"]

JudgeKind = Literal["url", "path", "default"]


@dataclass(frozen=True)
class JudgeSpec:
    """One ``--model`` value: what to grade with and how to label it."""

    label: str
    target: str
    kind: JudgeKind
    model_name: str | None = None
    server_options: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description for reports."""
        out: dict[str, Any] = {"label": self.label, "kind": self.kind, "target": self.target}
        if self.model_name:
            out["model_name"] = self.model_name
        if self.server_options:
            out["server_options"] = {k: (list(v) if isinstance(v, tuple) else v)
                                     for k, v in self.server_options.items()}
        return out

    def card(self) -> Any:
        """The folder's :class:`~judgeforge.card.JudgeCard` (None: not a folder, or no card)."""
        from judgeforge.models.spec import ModelSpec

        return ModelSpec("path", self.target).card() if self.kind == "path" else None

    def template(self, dimension: str, scale: Scale) -> Any:
        """The prompt to grade ``dimension`` with: the card's when the judge has one (its
        scale must be ``scale``), else the plain one-dimension template."""
        from judgeforge.prompt import PromptTemplate

        card = self.card()
        if card is None:
            return PromptTemplate({dimension: scale})
        template = card.template()
        if dict(template.dimensions) != {dimension: scale}:
            trained = {d: f"{s.min}-{s.max}" for d, s in template.dimensions.items()}
            raise ConfigError(f"judge {self.label} was trained on {trained}; the data is graded "
                              f"on {dimension} {scale.min}-{scale.max}")
        return template


def parse_judge_spec(text: str, *, model_name: str | None = None,
                     server_options: Mapping[str, Any] | None = None) -> JudgeSpec:
    """Parse one ``--model`` value (see the module docstring).

    ``model_name`` is the served name to request from a URL server (None: ask ``/v1/models``).
    ``server_options`` are :class:`~judgeforge.models.vllm_server.VLLMServer` options for managed
    servers (ignored for URLs).
    """
    spec = parse_model_spec(text)
    opts = dict(server_options or {})
    if spec.kind == "url":
        return JudgeSpec(spec.label or model_name or spec.display, spec.target, "url", model_name)
    kind: JudgeKind = "default" if spec.kind == "default" else "path"
    return JudgeSpec(spec.display, spec.target, kind, None, opts)


def parse_judge_specs(texts: Sequence[str], *, model_name: str | None = None,
                      server_options: Mapping[str, Any] | None = None) -> list[JudgeSpec]:
    """Parse several ``--model`` values; repeated labels get ``-2``, ``-3``... suffixes."""
    if not texts:
        raise ConfigError("give at least one --model")
    specs: list[JudgeSpec] = []
    seen: dict[str, int] = {}
    for text in texts:
        spec = parse_judge_spec(text, model_name=model_name, server_options=server_options)
        count = seen.get(spec.label, 0) + 1
        seen[spec.label] = count
        if count > 1:
            spec = JudgeSpec(f"{spec.label}-{count}", spec.target, spec.kind, spec.model_name,
                             spec.server_options)
        specs.append(spec)
    return specs


def make_model(spec: JudgeSpec, *, timeout: float = 300.0, max_retries: int = 3) -> Any:
    """An :class:`~judgeforge.models.openai_chat.OpenAIChatModel` for ``spec`` (not started).

    Its own concurrency limit is off (``max_concurrency=None``): the benchmark's runner or
    semaphore is the only limit, so every variant runs at the concurrency asked for.
    """
    from judgeforge.models.openai_chat import OpenAIChatModel

    common: dict[str, Any] = {"timeout": timeout, "max_retries": max_retries,
                              "max_concurrency": None, "name": spec.label}
    if spec.kind == "url":
        return OpenAIChatModel(model=spec.model_name, base_url=spec.target, **common)
    opts = dict(spec.server_options) or None
    if spec.kind == "default":
        return OpenAIChatModel(server_options=opts, **common)
    return OpenAIChatModel(model=spec.target, is_local=True, server_options=opts, **common)


@contextlib.asynccontextmanager
async def open_judge(spec: JudgeSpec, **kw: Any) -> AsyncIterator[Any]:
    """Open ``spec``'s model (starting a managed server if needed) and close it afterwards."""
    model = make_model(spec, **kw)
    try:
        await model.start()
        yield model
    finally:
        await model.aclose()


def server_root(base_url: str | None) -> str | None:
    """``http://host:port`` from an OpenAI base URL ``http://host:port/v1``."""
    if not base_url:
        return None
    root = base_url.rstrip("/")
    return root[:-3] if root.endswith("/v1") else root


async def served_model_name(model: Any) -> str:
    """The model name to put in raw requests to ``model``'s server."""
    if getattr(model, "model", None) and not getattr(model, "managed", False):
        return str(model.model)
    server = getattr(model, "server", None)
    if server is not None:
        return str(server.model_name)
    import openai

    client = openai.AsyncOpenAI(base_url=model.base_url, api_key="EMPTY")
    try:
        listing = await client.models.list()
    finally:
        await client.close()
    if not listing.data:
        raise ConfigError(f"the server at {model.base_url} lists no models")
    return str(listing.data[0].id)
