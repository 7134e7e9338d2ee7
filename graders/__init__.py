"""judgeforge.graders: built-in LLM graders and the ``judgeforge grade`` command.

    from judgeforge.graders import HelpfulnessGrader
    grader = HelpfulnessGrader(model, mode="expected")
    result = await grader.aevaluate(query="...", response="...")
    result.score, result.reason

Never imports torch or vllm.
"""

from judgeforge.graders.builtin import (
    GRADERS,
    CorrectnessGrader,
    HelpfulnessGrader,
    MultiDimensionGrader,
    RelevanceGrader,
    get_grader,
    grader_names,
)
from judgeforge.grader_base import BaseGrader
from judgeforge.llm_grader import LLMGrader
from judgeforge.results import GraderError, GraderResult, GraderScore
from judgeforge.runner import GraderConfig, GradingRunner, WeightedMean

__all__ = [
    "BaseGrader",
    "LLMGrader",
    "HelpfulnessGrader",
    "CorrectnessGrader",
    "RelevanceGrader",
    "MultiDimensionGrader",
    "GRADERS",
    "get_grader",
    "grader_names",
    "GraderScore",
    "GraderError",
    "GraderResult",
    "GradingRunner",
    "GraderConfig",
    "WeightedMean",
]
