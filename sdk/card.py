"""The judge card: what a trained judge needs to be graded exactly as it was trained.

Both training backends write ``judge_config.json`` beside the checkpoint's ``config.json``; every
grading surface (``LLMGrader.from_pretrained``, ``judgeforge serve FOLDER``, ``judgeforge grade
--model FOLDER``, ``judgeforge bench quality --model FOLDER``) reads it::

    {"version": 1,
     "dimensions": {"quality": [1, 5]},
     "prompt": {"template_version": 1, "thinking": false, "max_response_chars": 400, ...},
     "scoring": {"mode": "sample", "constrained": false, "temperature": null, ...},
     "calibration": null,                      # or Calibration.to_dict()
     "base_model": "SmolLM2-135M-Instruct", "data_fingerprint": "sha256:...",
     "metrics": {"val_mae": 0.8}}

``prompt`` is :meth:`PromptTemplate.settings` (everything but the dimensions), so the card
rebuilds the very template the training rows were rendered with (:meth:`JudgeCard.template`).
A folder without a card reads as ``None`` (callers keep their defaults); a card this version
cannot read (bad JSON, a wrong value, a newer ``version``) is a :class:`ConfigError` naming the
file and the key.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from judgeforge.calibration import Calibration
from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError
from judgeforge.prompt import PromptTemplate

__all__ = ["JudgeCard", "ScoringSettings", "CARD_FILE", "CARD_VERSION", "data_fingerprint"]

CARD_FILE = "judge_config.json"
CARD_VERSION = 1
_MODES = ("sample", "expected", "vote")


@dataclass(frozen=True)
class ScoringSettings:
    """The default scoring mode and decoding settings (``LLMGrader``'s keywords of the same names;
    ``None`` keeps the grader's default)."""

    mode: str = "sample"
    constrained: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    n: int = 5
    vote: str = "mean"
    top_logprobs: int = 20

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ConfigError(f"mode must be one of {_MODES}, got {self.mode!r}")
        if self.vote not in ("mean", "majority"):
            raise ConfigError(f"vote must be 'mean' or 'majority', got {self.vote!r}")


@dataclass(frozen=True)
class JudgeCard:
    """A trained judge's card (see the module docstring for the file)."""

    dimensions: Mapping[str, Scale]
    prompt: Mapping[str, Any] = field(default_factory=lambda: PromptTemplate().settings())
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    calibration: Calibration | None = None
    base_model: str | None = None
    data_fingerprint: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    version: int = CARD_VERSION

    def __post_init__(self) -> None:
        self.template()  # the prompt settings must build a template

    @classmethod
    def from_template(cls, template: PromptTemplate, **kw: Any) -> JudgeCard:
        """A card for a judge trained with ``template`` (other fields as keywords)."""
        return cls(dimensions=dict(template.dimensions), prompt=template.settings(), **kw)

    def template(self) -> PromptTemplate:
        """The prompt template the judge was trained with."""
        return PromptTemplate.from_settings(self.dimensions, self.prompt)

    def grader_kwargs(self) -> dict[str, Any]:
        """``LLMGrader`` keywords: the template and the scoring settings."""
        kw: dict[str, Any] = {"template": self.template()}
        kw.update(asdict(self.scoring))
        return kw

    # -- file form -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (the file's content)."""
        return {"version": self.version,
                "dimensions": {d: [s.min, s.max] for d, s in self.dimensions.items()},
                "prompt": dict(self.prompt), "scoring": asdict(self.scoring),
                "calibration": self.calibration.to_dict() if self.calibration else None,
                "base_model": self.base_model, "data_fingerprint": self.data_fingerprint,
                "metrics": _json_metrics(self.metrics)}

    @classmethod
    def from_dict(cls, data: Any, source: str = CARD_FILE) -> JudgeCard:
        """Read the file form; any problem is a ConfigError naming ``source`` and the key."""
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"{source}: key {key!r}: {why}")

        if not isinstance(data, Mapping):
            raise bad("(top level)", f"must be a JSON object, got {type(data).__name__}")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise bad("version", f"must be a positive integer, got {version!r}")
        if version > CARD_VERSION:
            raise bad("version", f"card version {version} is newer than this judgeforge reads "
                                 f"({CARD_VERSION}); upgrade judgeforge")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise bad(unknown[0], f"unknown key (known: {', '.join(sorted(known))})")
        dims_raw = data.get("dimensions")
        if not isinstance(dims_raw, Mapping) or not dims_raw:
            raise bad("dimensions", "must map each dimension to [min, max]")
        dims: dict[str, Scale] = {}
        for name, rng in dims_raw.items():
            try:
                lo, hi = rng
                dims[str(name)] = Scale(min=lo, max=hi)
            except (TypeError, ValueError) as exc:
                raise bad(f"dimensions.{name}", f"must be [min, max] integers, got {rng!r}: "
                                                f"{exc}") from exc
        prompt = data.get("prompt") or {}
        if not isinstance(prompt, Mapping):
            raise bad("prompt", "must be an object of prompt settings")
        try:
            PromptTemplate.from_settings(dims, prompt)
        except ConfigError as exc:
            raise bad("prompt", str(exc)) from exc
        scoring_raw = data.get("scoring") or {}
        try:
            scoring = ScoringSettings(**dict(scoring_raw))
        except (TypeError, ValueError) as exc:
            raise bad("scoring", str(exc)) from exc
        calibration = None
        if data.get("calibration") is not None:
            try:
                calibration = Calibration.from_dict(data["calibration"])
            except (ConfigError, KeyError, TypeError, ValueError) as exc:
                raise bad("calibration", str(exc)) from exc
        for key in ("base_model", "data_fingerprint"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise bad(key, f"must be text, got {data[key]!r}")
        metrics = data.get("metrics") or {}
        if not isinstance(metrics, Mapping):
            raise bad("metrics", "must be an object")
        return cls(dimensions=dims, prompt=dict(prompt), scoring=scoring,
                   calibration=calibration, base_model=data.get("base_model"),
                   data_fingerprint=data.get("data_fingerprint"), metrics=dict(metrics),
                   version=version)

    @classmethod
    def read(cls, folder: str | Path) -> JudgeCard | None:
        """The card in ``folder``; ``None`` when there is none (a folder or a base model)."""
        path = Path(folder) / CARD_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the judge card: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/judge_config.json`` (atomically) and return its path."""
        path = Path(folder) / CARD_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        tmp.replace(path)
        return path


def _json_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics with non-finite numbers as None (JSON has no NaN)."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif hasattr(value, "item"):  # numpy / torch scalars
            value = value.item()
        out[str(key)] = value
    return out


def data_fingerprint(records: Iterable[Any]) -> str:
    """``sha256:<hex>`` of the records' canonical JSON (order-independent): which data trained
    the judge, for the record."""
    digests = sorted(
        hashlib.sha256(json.dumps(r.to_dict() if hasattr(r, "to_dict") else r, sort_keys=True,
                                  ensure_ascii=False, default=str).encode()).hexdigest()
        for r in records)
    return "sha256:" + hashlib.sha256("\n".join(digests).encode()).hexdigest()
