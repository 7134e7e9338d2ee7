"""The pointwise record: a query (chat messages), a response and its integer label(s).

    {"input": [{"role": "user", "content": "..."}],
     "output": {"content": "<response>", "label": {"helpfulness": 3}},
     "data_source": "helpsteer2", "id": "optional", "extra_info": {...}}

The seed's list form ``"output": [{"content": ..., "label": {...}}]`` loads too (one element).
The scale of each dimension is part of the dataset's description (:class:`DatasetInfo`), not of
the record, so validation of label ranges happens against a ``DatasetInfo``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from judgeforge.errors import ConfigError, DataError

__all__ = ["Message", "PointwiseOutput", "PointwiseRecord", "Scale", "DatasetInfo",
           "DEFAULT_SCALE", "ROLES", "check_role", "user_turn_problem", "last_user_text"]

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


def check_role(role: Any, where: str = "role") -> str:
    """``role`` when it is a chat role (:data:`ROLES`), else a :class:`DataError` naming ``where``.

    Roles reach the judge's prompt as text: an unchecked one could carry tags (a planted score).
    """
    if isinstance(role, str) and role in ROLES:
        return role
    raise DataError(f"{where}: {str(role)[:40]!r} is not a chat role (use one of "
                    f"{', '.join(ROLES)})")

_SCALE_RE = re.compile(r"^\s*(-?\d+)\s*(?:-|\.\.)\s*(-?\d+)\s*$")


def _drop_none(value: Any) -> Any:
    """``value`` without the ``None`` entries of its dicts, recursively (list items kept)."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="allow")
    role: Role
    content: str


def user_turn_problem(messages: list[Message]) -> str | None:
    """What is wrong with a record's ``input`` when none of its messages is a user turn (the
    question a judge grades is one), listing the roles; None when one is. The records' ``input``
    validators raise it, so pydantic reports it at ``input``."""
    if any(m.role == "user" for m in messages):
        return None
    return f"no user turn (roles: {', '.join(m.role for m in messages) or 'none'})"


def last_user_text(messages: list[Message]) -> str:
    """The last user turn's text: a record's query."""
    return next(m.content for m in reversed(messages) if m.role == "user")


class PointwiseOutput(BaseModel):
    """The graded response and its label(s): dimension -> integer score."""

    model_config = ConfigDict(extra="allow")
    content: str
    label: dict[str, StrictInt] = Field(min_length=1)

    @field_validator("label", mode="before")
    @classmethod
    def _integral_floats(cls, value: Any) -> Any:
        # Parquet/JSON may store 3 as 3.0; accept exact integers only (3.5 stays an error).
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                out[k] = v
            return out
        return value


class PointwiseRecord(BaseModel):
    """One labelled query/response pair."""

    model_config = ConfigDict(extra="forbid")
    input: list[Message] = Field(min_length=1)
    output: PointwiseOutput
    data_source: str = Field(min_length=1)
    id: str | None = None
    extra_info: dict[str, Any] | None = None

    @field_validator("output", mode="before")
    @classmethod
    def _list_form(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(value) != 1:
                raise ValueError(
                    f"list form of output must hold exactly one item, got {len(value)}")
            return value[0]
        return value

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("input", mode="after")
    @classmethod
    def _has_user_turn(cls, value: list[Message]) -> list[Message]:
        # A field validator (not a model validator) so the error's location is ``input``.
        problem = user_turn_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @property
    def query(self) -> str:
        """The last user turn's text (the question being answered)."""
        return last_user_text(self.input)

    @property
    def response(self) -> str:
        """The graded response's text."""
        return self.output.content

    @property
    def label(self) -> dict[str, int]:
        """Dimension -> integer score."""
        return self.output.label

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict form, ``output`` as a dict.

        ``None`` values are left out, at every depth (``extra_info={"a": None}`` gives
        ``{}``): this is the form files store, and Parquet cannot tell a null field from an
        absent one.
        """
        return _drop_none(self.model_dump(mode="json", exclude_none=True))


class Scale(BaseModel):
    """An inclusive integer score range, e.g. 0-4 or 1-5."""

    model_config = ConfigDict(frozen=True)
    min: int = 0
    max: int = 4

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError(f"scale max ({self.max}) must be greater than min ({self.min})")
        return self

    @classmethod
    def parse(cls, text: str) -> Scale:
        """``"1-5"`` -> Scale(min=1, max=5) (``"-2-2"`` and ``"1..5"`` work too)."""
        match = _SCALE_RE.match(text)
        if not match:
            raise ConfigError(f"scale must look like MIN-MAX (e.g. 0-4), got {text!r}")
        return cls(min=int(match.group(1)), max=int(match.group(2)))

    @property
    def span(self) -> int:
        """``max - min`` (the largest possible error)."""
        return self.max - self.min

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.min <= value <= self.max

    def __str__(self) -> str:
        return f"{self.min}-{self.max}"


DEFAULT_SCALE = Scale()


class DatasetInfo(BaseModel):
    """What a pointwise file describes: its dimensions and their scales, plus provenance."""

    name: str = "dataset"
    dimensions: dict[str, Scale] = Field(default_factory=lambda: {"helpfulness": DEFAULT_SCALE})
    source: str | None = None
    license: str | None = None
    description: str | None = None

    @field_validator("dimensions", mode="before")
    @classmethod
    def _scale_strings(cls, value: Any) -> Any:
        # {"helpfulness": "0-4"} is accepted as shorthand for {"helpfulness": {"min": 0, "max": 4}}.
        if isinstance(value, dict):
            return {k: Scale.parse(v) if isinstance(v, str) else v for k, v in value.items()}
        return value

    def scale(self, dimension: str) -> Scale:
        """The scale of ``dimension`` (the default 0-4 when the dimension is not described)."""
        return self.dimensions.get(dimension, DEFAULT_SCALE)

    @property
    def dimension_names(self) -> list[str]:
        """The dimensions in their declared order."""
        return list(self.dimensions)
