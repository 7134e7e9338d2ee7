"""judgeforge.graders: built-in LLM graders and the ``judgeforge grade`` command.

    from judgeforge.graders import HelpfulnessGrader
    grader = HelpfulnessGrader(model, mode="expected")
    result = await grader.aevaluate(query="...", response="...")
    result.score, result.reason

Never imports torch or vllm.
"""

from judgeforge.graders.base import BaseGrader
from judgeforge.graders.builtin import (
    GRADERS,
    CorrectnessGrader,
    HelpfulnessGrader,
    MultiDimensionGrader,
    RelevanceGrader,
    get_grader,
    grader_names,
)
from judgeforge.graders.llm_grader import LLMGrader
from judgeforge.graders.pairwise import PairwiseGrader, PointwisePreferenceGrader
from judgeforge.graders.results import GraderError, GraderPreference, GraderResult, GraderScore
from judgeforge.graders.runner import (
    GraderConfig,
    GradingRunner,
    RunSummary,
    WeightedMean,
    record_mapper,
)

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
    "GraderPreference",
    "GraderResult",
    "PairwiseGrader",
    "PointwisePreferenceGrader",
    "GradingRunner",
    "GraderConfig",
    "WeightedMean",
    "RunSummary",
    "record_mapper",
]
