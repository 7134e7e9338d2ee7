"""Built-in graders: helpfulness, correctness, relevance (0-4, the seed's scales) and a
multi-dimension grader that asks for several dimensions in one call.

Each is an :class:`~judgeforge.graders.llm_grader.LLMGrader` with its prompt; every LLMGrader option
(``mode``, ``constrained``, ``n``, ``vote``, ``temperature``...) passes through, and so does
every prompt setting (``rubric``, ``thinking``, ``system_prompt``, ``max_query_chars``,
``max_response_chars``, ``task``...: ``HelpfulnessGrader(model, max_response_chars=400)``), or a
whole ``template=PromptTemplate(...)`` for the grader's dimension(s). A custom grader is a
subclass, or an ``LLMGrader(model, template=PromptTemplate(...))``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from judgeforge.data.schema import DEFAULT_SCALE, Scale
from judgeforge.errors import ConfigError
from judgeforge.graders.llm_grader import LLMGrader
from judgeforge.models.base import ChatModel
from judgeforge.prompt import PromptTemplate, check_dimension_name

__all__ = [
    "HelpfulnessGrader",
    "CorrectnessGrader",
    "RelevanceGrader",
    "MultiDimensionGrader",
    "GRADERS",
    "get_grader",
    "grader_names",
]


_PROMPT_SETTINGS = frozenset(PromptTemplate.__dataclass_fields__) - {"dimensions"}


def _template(dimensions: Mapping[str, Scale], opts: dict[str, Any]) -> PromptTemplate:
    """The grader's template: ``opts["template"]`` (for these dimensions' names), or one built
    from the prompt settings in ``opts``; both are taken out of ``opts``."""
    template = opts.pop("template", None)
    prompt = {k: opts.pop(k) for k in list(opts) if k in _PROMPT_SETTINGS}
    if template is None:
        return PromptTemplate(dict(dimensions), **prompt)
    if prompt:
        raise ConfigError(f"pass prompt settings ({', '.join(sorted(prompt))}) or template=, "
                          "not both")
    if set(template.dimensions) != set(dimensions):
        raise ConfigError(f"the template grades {list(template.dimensions)}, this grader "
                          f"{list(dimensions)}")
    return template


class _OneDimension(LLMGrader):
    """An LLMGrader for one named dimension."""

    DIMENSION = "helpfulness"

    def __init__(self, model: ChatModel, *, scale: Scale = DEFAULT_SCALE, **opts: Any) -> None:
        template = _template({self.DIMENSION: scale}, opts)
        super().__init__(model, template=template, **opts)


class HelpfulnessGrader(_OneDimension):
    """How helpful the response is to the user: 0 (not helpful) to 4 (very helpful)."""

    DIMENSION = "helpfulness"


class CorrectnessGrader(_OneDimension):
    """How factually correct the response is: 0 (wrong) to 4 (perfect).

    Pass ``reference=`` (a top-score answer) when you have one.
    """

    DIMENSION = "correctness"


class RelevanceGrader(_OneDimension):
    """How relevant the response is to the query: 0 (off-topic) to 4 (highly relevant)."""

    DIMENSION = "relevance"


class MultiDimensionGrader(LLMGrader):
    """Several dimensions in one call (``<helpfulness>X</helpfulness>`` ... one tag each).

    ``score`` is the mean of the dimensions; ``metadata["scores"]`` holds each. In
    ``expected`` mode each dimension is its own call (prefilled with its tag).
    """

    def __init__(self, model: ChatModel, *,
                 dimensions: Sequence[str] | Mapping[str, Scale] = ("helpfulness", "correctness",
                                                                    "relevance"),
                 scale: Scale = DEFAULT_SCALE, **opts: Any) -> None:
        dims = dict(dimensions) if isinstance(dimensions, Mapping) else \
            {d: scale for d in dimensions}
        if len(dims) < 2:
            raise ConfigError("MultiDimensionGrader needs at least two dimensions; use a "
                              "one-dimension grader otherwise")
        template = _template(dims, opts)
        opts.setdefault("name", "multi_dimension")
        super().__init__(model, template=template, **opts)


GRADERS: dict[str, Callable[..., LLMGrader]] = {
    "helpfulness": HelpfulnessGrader,
    "correctness": CorrectnessGrader,
    "relevance": RelevanceGrader,
    "multi": MultiDimensionGrader,
}


def grader_names() -> list[str]:
    """The names :func:`get_grader` knows."""
    return sorted(GRADERS)


def get_grader(name: str, model: ChatModel, **opts: Any) -> LLMGrader:
    """A built-in grader by name (``helpfulness``, ``correctness``, ``relevance``, ``multi``).

    Any other name is graded as a single dimension of that name (a template away).
    """
    factory = GRADERS.get(name)
    if factory is not None:
        return factory(model, **opts)
    try:
        check_dimension_name(name)
    except ConfigError as exc:
        raise ConfigError(f"unknown grader {name!r}: use one of {', '.join(grader_names())} "
                          f"or a dimension name ({exc})") from None
    template = _template({name: opts.pop("scale", DEFAULT_SCALE)}, opts)
    return LLMGrader(model, template=template, **opts)
