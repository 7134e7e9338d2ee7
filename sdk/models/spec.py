"""One parser for "which judge": ``URL | PATH | default``, optionally labelled ``NAME=...``.

Every command (``judgeforge grade --model``, ``judgeforge serve``, ``judgeforge bench ...
--model``, ``judgeforge serve-model``) and the Python API (``OpenAIChatModel(model=...)``) read
a model string with :func:`parse_model_spec`, so the same string means the same judge
everywhere:

- ``http://host:port[/path]`` or ``https://...``: an OpenAI-compatible server (``/v1`` is
  appended when the URL has no path);
- ``default``: the prepared default model (served by a managed vLLM server);
- a registry name (``judgeforge model list``, e.g. ``qwen2.5-coder-0.5b-instruct``): that base
  model, prepared now if needed, then the same as its folder;
- a folder: a local checkpoint (served by a managed vLLM server); its judge card
  (:class:`~judgeforge.card.JudgeCard`), if any, comes with it;
- ``name=<any of the above>``: the same, labelled ``name`` in tables and result files.

Anything else is a :class:`ConfigError`, except where the caller accepts plain served-model
names (``names=True``: the Python API's ``OpenAIChatModel(model="gpt-4o-mini")``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse, urlunparse

from judgeforge.errors import ConfigError

if TYPE_CHECKING:
    from judgeforge.card import JudgeCard

__all__ = ["ModelSpec", "SpecKind", "parse_model_spec", "normalise_url", "is_url"]

SpecKind = Literal["url", "path", "default", "name"]
_LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model string.

    ``target`` is the normalised URL, the resolved folder, ``"default"``, or the served model
    name (kind ``name``); ``label`` is the ``NAME=`` prefix (None when absent).
    """

    kind: SpecKind
    target: str
    label: str | None = None

    @property
    def path(self) -> Path | None:
        """The folder of a ``path`` spec (None for the others)."""
        return Path(self.target) if self.kind == "path" else None

    def card(self) -> JudgeCard | None:
        """The judge card of a ``path`` spec's servable folder (a verl checkpoint is resolved,
        i.e. merged, first: its merged folder holds the card); None for the other kinds or a
        folder without a card."""
        from judgeforge.card import JudgeCard
        from judgeforge.models.resolve import resolve_model_path

        if self.kind != "path":
            return None
        return JudgeCard.read(resolve_model_path(self.target))

    @property
    def display(self) -> str:
        """A short name for tables: the label, else the folder name / host / target."""
        if self.label:
            return self.label
        if self.kind == "path":
            return Path(self.target).name
        if self.kind == "url":
            return urlparse(self.target).netloc
        return self.target


def is_url(text: str | os.PathLike[str] | None) -> bool:
    """Whether ``text`` is an ``http(s)://`` URL."""
    return isinstance(text, str) and text.strip().startswith(("http://", "https://"))


def normalise_url(url: str) -> str:
    """``url`` without a trailing slash, ``/v1`` appended when it has no path."""
    parts = urlparse(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not an http(s) URL: {url!r}")
    path = parts.path.rstrip("/") or "/v1"
    return urlunparse(parts._replace(path=path))


def parse_model_spec(text: str | os.PathLike[str] | None, *, names: bool = False,
                     what: str = "--model") -> ModelSpec:
    """Parse a model string (see the module docstring); ``None`` means ``default``.

    A folder must exist (it need not hold ``config.json`` yet: a verl checkpoint is resolved
    to a servable folder when it is served). ``names=True`` accepts any other text as a served
    model name; otherwise it is a :class:`ConfigError` naming ``what``.
    """
    if text is None:
        return ModelSpec("default", "default")
    raw = os.fspath(text).strip()
    if not raw:
        raise ConfigError(f"{what}: an empty model string")
    label: str | None = None
    head, sep, rest = raw.partition("=")
    if sep and rest and _LABEL.match(head) and "://" not in head and not Path(raw).exists():
        label, raw = head, rest.strip()
    if is_url(raw):
        return ModelSpec("url", normalise_url(raw), label)
    if raw == "default":
        return ModelSpec("default", "default", label)
    path = Path(raw).expanduser()
    if path.is_dir():
        return ModelSpec("path", str(path.resolve()), label)
    from judgeforge.models.default_model import model_names, prepare_model

    if raw in model_names():  # a base model by name: prepared on first use
        return ModelSpec("path", str(prepare_model(raw).resolve()), label)
    if names and label is None:
        return ModelSpec("name", raw)
    raise ConfigError(f"{what} {raw!r} is neither a URL (http...), 'default', nor a model folder "
                      f"({path} does not exist), nor a model name ({', '.join(model_names())})")
