"""The judge card: what a trained judge needs to be graded exactly as it was trained.

Both training backends write ``judge_config.json`` beside the checkpoint's ``config.json``; every
grading surface (``LLMGrader.from_pretrained``, ``judgeforge serve FOLDER``, ``judgeforge grade
--model FOLDER``, ``judgeforge bench quality --model FOLDER``) reads it with
:meth:`JudgeCard.read`::

    {"version": 1, "kind": "pointwise",
     "dimensions": {"quality": [1, 5]},
     "prompt": {"template_version": 1, "thinking": false, "max_response_chars": 400, ...},
     "scoring": {"mode": "sample", "constrained": false, "temperature": null, ...},
     "calibration": null,                      # or Calibration.to_dict()
     "base_model": "SmolLM2-135M-Instruct", "base_model_sha256": null, "adapter": null,
     "data_fingerprint": "sha256:...", "metrics": {"val_mae": 0.8}}

A judge that compares two responses (``"kind": "pairwise"``) also carries a ``pairwise`` block
(:class:`PairwiseSettings`: its pairwise prompt and scoring settings), which
:meth:`PairwiseGrader.from_card <judgeforge.graders.pairwise.PairwiseGrader.from_card>`,
``judgeforge grade``, the ``/v1/compare`` route and ``bench preference`` read.

A card is a file users download and share, so it is untrusted input: :class:`JudgeCard` is ONE
strict schema (a pydantic dataclass, strict types, unknown keys refused) that every reader goes
through. ``thinking: "no"``, ``max_response_chars: 1.5``, a dimension ``[false, true]`` or
``descriptions: "abc"`` are refused at load, as are out-of-bound settings (``scoring.n``, a scale
too wide for a prompt), dimension names the prompt cannot use
(:func:`~judgeforge.prompt.check_dimension_name`) and a calibration that leaves the scale. Any
problem is a :class:`ConfigError` naming the file and the dotted key
(``judge_config.json: key 'prompt.max_response_chars': ...``). Cards written by earlier versions
(without ``kind``, ``base_model_sha256`` or ``adapter``) read as before.

``prompt`` is :meth:`PromptTemplate.settings` (everything but the dimensions), so the card
rebuilds the very template the training rows were rendered with (:meth:`JudgeCard.template`).
A folder without a card reads as ``None`` (callers keep their defaults).

Adding a setting: add a field (with its docstring) to :class:`JudgeCard` or to the section it
belongs to (a strict, frozen pydantic model such as :class:`ScoringSettings`); reading, writing
and validation follow from the field's type. A new section is a new ``_Section`` subclass.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.dataclasses import dataclass

from judgeforge.calibration import Calibration
from judgeforge.data.schema import Scale
from judgeforge.errors import ConfigError
from judgeforge.pairwise_prompt import PAIRWISE_TEMPLATE_VERSION, PairwisePromptTemplate
from judgeforge.prompt import (
    TEMPLATE_VERSION,
    PromptTemplate,
    check_dimension_name,
    check_dimensions,
)

__all__ = ["JudgeCard", "ScoringSettings", "PromptSettings", "AdapterSettings",
           "PairwiseSettings", "CARD_FILE",
           "CARD_VERSION", "MAX_N", "MAX_TOP_LOGPROBS", "MAX_TOKENS", "data_fingerprint"]

CARD_FILE = "judge_config.json"
CARD_VERSION = 1
MAX_N = 64  # samples per vote call
MAX_TOP_LOGPROBS = 20  # the OpenAI API's (and vLLM's default) limit
MAX_TOKENS = 32_768
_MAX_METRICS_DEPTH = 32  # nesting of the free-form metrics object
_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Section(BaseModel):
    """A strict block of the card: exact JSON types (no ``"yes"`` for true, no 1.5 for an
    integer), unknown keys refused."""

    model_config = _STRICT


class ScoringSettings(_Section):
    """The default scoring mode and decoding settings (``LLMGrader``'s keywords of the same names;
    ``None`` keeps the grader's default)."""

    mode: Literal["sample", "expected", "vote"] = "sample"
    """``sample``, ``expected`` or ``vote`` (see :mod:`judgeforge.graders.llm_grader`)."""
    constrained: bool = False
    """Constrain decoding to the answer format."""
    temperature: float | None = Field(None, ge=0.0, le=10.0, allow_inf_nan=False)
    """Sampling temperature (None: 0 for sample, 1.0 for vote)."""
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    """Generated tokens per answer (None: 256, 1024 with thinking)."""
    n: int = Field(5, ge=1, le=MAX_N)
    """Samples per vote."""
    vote: Literal["mean", "majority"] = "mean"
    """How votes combine."""
    top_logprobs: int = Field(20, ge=1, le=MAX_TOP_LOGPROBS)
    """Alternatives read per score token in expected mode."""


class PromptSettings(_Section):
    """The ``prompt`` block: :meth:`PromptTemplate.settings`, typed (a test keeps the two in
    step)."""

    template_version: int = Field(TEMPLATE_VERSION, ge=1, le=TEMPLATE_VERSION)
    """The template version the judge was trained with (a newer one needs a newer judgeforge)."""
    rubric: str | None = None
    thinking: bool = False
    system_prompt: str | None = None
    descriptions: dict[str, str] = Field(default_factory=dict)
    """Dimension -> what it asks (replaces the built-in description)."""
    task: str | None = None
    max_query_chars: int | None = Field(None, ge=1)
    max_response_chars: int | None = Field(None, ge=1)
    max_reference_chars: int | None = Field(None, ge=1)
    use_rubric: bool = True
    use_reference: bool = True


class AdapterSettings(_Section):
    """The LoRA adapter a judge was trained with (the folder's weights have it merged in)."""

    r: int = Field(ge=1, le=1024)
    """Rank."""
    alpha: float = Field(gt=0.0, le=1e6, allow_inf_nan=False)
    """Scaling numerator (scale = alpha / r)."""
    target_modules: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    """Module names that got an adapter."""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout on the adapter's input."""


class PairwiseSettings(_Section):
    """The ``pairwise`` block of a judge that compares two responses
    (:class:`~judgeforge.graders.pairwise.PairwiseGrader`): its prompt
    (:meth:`PairwisePromptTemplate.settings`) and its scoring settings."""

    template_version: int = Field(PAIRWISE_TEMPLATE_VERSION, ge=1, le=PAIRWISE_TEMPLATE_VERSION)
    """The pairwise template version the judge was trained with."""
    criterion: str = Field(PairwisePromptTemplate.criterion, min_length=1)
    """What "better" means in the prompt."""
    thinking: bool = False
    system_prompt: str | None = None
    task: str | None = None
    max_query_chars: int | None = Field(None, ge=1)
    max_response_chars: int | None = Field(None, ge=1)
    max_reference_chars: int | None = Field(None, ge=1)
    use_rubric: bool = True
    use_reference: bool = True
    mode: Literal["expected", "sample"] = "expected"
    """``expected`` (verdict-token probabilities) or ``sample`` (parse the verdict tag)."""
    both_orders: bool = True
    """Judge (a, b) and (b, a) and average."""
    tie_margin: float | None = Field(None, ge=0.0, le=1.0, allow_inf_nan=False)
    """A tie when ``|P(a) - P(b)|`` is within it (None: the tie token's own probability)."""
    constrained: bool = False
    temperature: float | None = Field(None, ge=0.0, le=10.0, allow_inf_nan=False)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    top_logprobs: int = Field(20, ge=1, le=MAX_TOP_LOGPROBS)

    _PROMPT_KEYS = ("template_version", "criterion", "thinking", "system_prompt", "task",
                    "max_query_chars", "max_response_chars", "max_reference_chars",
                    "use_rubric", "use_reference")

    @classmethod
    def from_template(cls, template: PairwisePromptTemplate, **scoring: Any) -> PairwiseSettings:
        """The block for a judge trained with ``template`` (scoring settings as keywords)."""
        return cls(**template.settings(), **scoring)

    def template(self) -> PairwisePromptTemplate:
        """The pairwise prompt the judge was trained with."""
        data = self.model_dump()
        return PairwisePromptTemplate.from_settings({k: data[k] for k in self._PROMPT_KEYS})

    def grader_kwargs(self) -> dict[str, Any]:
        """``PairwiseGrader`` keywords: the template and the scoring settings."""
        data = self.model_dump()
        kw = {k: v for k, v in data.items() if k not in self._PROMPT_KEYS}
        kw["template"] = self.template()
        return kw


def _scale_form(value: Any) -> Any:
    """The file's ``[min, max]`` (two JSON integers) as a :class:`Scale`'s fields."""
    if isinstance(value, Scale):
        return value
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        return {"min": value[0], "max": value[1]}
    raise ConfigError(f"must be [min, max] integers, got {str(value)[:60]}")


def _depth_ok(value: Any) -> Any:
    """``value`` when its JSON nesting is at most ``_MAX_METRICS_DEPTH`` (checked without
    recursion, so a 100,000-deep object is an error, not a RecursionError)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if depth > _MAX_METRICS_DEPTH:
                raise ConfigError(f"nested deeper than {_MAX_METRICS_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children)
    return value


_DimName = Annotated[str, AfterValidator(check_dimension_name)]
_Scale = Annotated[Scale, BeforeValidator(_scale_form)]


@dataclass(frozen=True, config=ConfigDict(strict=True, extra="forbid",
                                          arbitrary_types_allowed=True))
class JudgeCard:
    """A trained judge's card (see the module docstring for the file)."""

    dimensions: Annotated[dict[_DimName, _Scale], Field(min_length=1)]
    """Dimension -> scale (the file writes ``[min, max]``)."""
    prompt: PromptSettings = field(default_factory=PromptSettings)
    """The prompt settings the training rows were rendered with."""
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    """The default scoring mode and decoding settings."""
    calibration: Calibration | None = None
    """Raw expected score -> the scale (one dimension only; every ``y`` on the scale)."""
    base_model: str | None = None
    """The model the judge was trained from (a name or folder)."""
    base_model_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    """SHA-256 (64 lowercase hex digits) of the base model's weights file, when known."""
    adapter: AdapterSettings | None = None
    """The LoRA adapter settings, for a judge trained with one (None: full fine-tuning)."""
    kind: Literal["pointwise", "pairwise"] = "pointwise"
    """What the judge grades: one response (pointwise) or a pair of responses (pairwise)."""
    pairwise: PairwiseSettings | None = None
    """How the judge compares two responses (required when ``kind`` is ``pairwise``)."""
    data_fingerprint: str | None = None
    """``sha256:...`` of the training records (:func:`data_fingerprint`)."""
    metrics: Annotated[dict[str, Any], AfterValidator(_depth_ok)] = field(default_factory=dict)
    """Free-form training metrics (JSON numbers, text, small objects)."""
    version: Annotated[int, Field(ge=1, le=CARD_VERSION)] = CARD_VERSION
    """The card format's version."""

    # -- validation (runs for every card: read, built by a trainer, or dataclasses.replace) ----
    @field_validator("dimensions", mode="after")
    @classmethod
    def _dimension_rule(cls, value: dict[str, Scale]) -> dict[str, Scale]:
        check_dimensions(value)
        return value

    @field_validator("calibration", mode="before")
    @classmethod
    def _calibration_form(cls, value: Any) -> Any:
        if isinstance(value, Calibration) or value is None:
            return value
        return Calibration.validate_form(value)

    @field_validator("calibration", mode="after")
    @classmethod
    def _calibration_on_scale(cls, value: Calibration | None,
                              info: ValidationInfo) -> Calibration | None:
        dims = info.data.get("dimensions")
        if value is None or not dims:
            return value
        if len(dims) != 1:
            raise ValueError(f"a calibration maps one dimension's score; the card has "
                             f"{len(dims)} dimensions")
        scale = next(iter(dims.values()))
        for key, values in (("y", value.y), ("low", (value.low,)), ("high", (value.high,))):
            off = [v for v in values if not scale.min <= v <= scale.max]
            if off:
                raise _KeyedError(key, f"{off[0]} is outside the scale {scale} (a calibrated "
                                       "score must stay on the scale)")
        return value

    @model_validator(mode="after")
    def _builds_a_template(self) -> JudgeCard:
        self.template()  # the prompt settings must build a template for these dimensions
        if self.kind == "pairwise" and self.pairwise is None:
            raise _KeyedError("pairwise", "a pairwise judge's card needs its pairwise block "
                                          "(prompt and scoring settings)")
        return self

    # -- use -------------------------------------------------------------------------------------
    @classmethod
    def from_template(cls, template: PromptTemplate, **kw: Any) -> JudgeCard:
        """A card for a judge trained with ``template`` (other fields as keywords)."""
        return cls(dimensions=dict(template.dimensions),
                   prompt=PromptSettings(**template.settings()), **kw)

    def template(self) -> PromptTemplate:
        """The prompt template the judge was trained with."""
        return PromptTemplate.from_settings(self.dimensions, self.prompt.model_dump())

    def grader_kwargs(self) -> dict[str, Any]:
        """``LLMGrader`` keywords: the template and the scoring settings."""
        kw: dict[str, Any] = {"template": self.template()}
        kw.update(self.scoring.model_dump())
        return kw

    # -- file form -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form (the file's content)."""
        return {"version": self.version, "kind": self.kind,
                "dimensions": {d: [s.min, s.max] for d, s in self.dimensions.items()},
                "prompt": self.prompt.model_dump(), "scoring": self.scoring.model_dump(),
                "calibration": self.calibration.to_dict() if self.calibration else None,
                "base_model": self.base_model, "base_model_sha256": self.base_model_sha256,
                "adapter": self.adapter.model_dump() if self.adapter else None,
                "data_fingerprint": self.data_fingerprint,
                "metrics": _json_metrics(self.metrics)} | (
                    {"pairwise": self.pairwise.model_dump()} if self.pairwise else {})

    @classmethod
    def from_dict(cls, data: Any, source: str = CARD_FILE) -> JudgeCard:
        """Read the file form; any problem is a ConfigError naming ``source`` and the key."""
        if not isinstance(data, Mapping):
            raise _bad(source, "(top level)", f"must be a JSON object, got "
                                              f"{type(data).__name__}")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _bad(source, "version", f"must be a positive integer, got {version!r}")
        if version > CARD_VERSION:
            raise _bad(source, "version", f"card version {version} is newer than this judgeforge "
                                          f"reads ({CARD_VERSION}); upgrade judgeforge")
        try:
            return cls(**{str(k): v for k, v in data.items()})
        except ValidationError as exc:
            raise _from_validation(source, exc) from None
        except ConfigError as exc:  # raised outside a validator (the Calibration's own checks)
            raise _bad(source, "(card)", str(exc)) from None

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
        except RecursionError:
            raise ConfigError(f"{path}: cannot read the judge card: JSON nested too deeply"
                              ) from None
        return cls.from_dict(data, source=str(path))

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/judge_config.json`` (atomically) and return its path."""
        path = Path(folder) / CARD_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        tmp.replace(path)
        return path


class _KeyedError(ConfigError):
    """A validator's error about one sub-key of its field (``calibration`` -> ``y``)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


def _bad(source: str, key: str, why: str) -> ConfigError:
    return ConfigError(f"{source}: key {key!r}: {why}")


def _from_validation(source: str, exc: ValidationError) -> ConfigError:
    """One ConfigError naming every invalid key of the card as a dotted path."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        if loc and loc[-1] == "[key]":  # a bad name: the mapping is the key, the message names it
            loc = loc[:-2]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, _KeyedError):
            loc.append(cause.key)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            msg = "unknown key"
        lines.append(f"{source}: key {'.'.join(loc) or '(card)'!r}: {msg}")
    return ConfigError("\n".join(lines[:5]) + (f"\n... and {len(lines) - 5} more"
                                                if len(lines) > 5 else ""))


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
