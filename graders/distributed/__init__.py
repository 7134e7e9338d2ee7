"""Grading on Ray Data: the same graders as ``GradingRunner``, over many replicas.

- :class:`RayGradingJob` / :func:`grade_on_ray`: backend (a), a set of OpenAI-compatible
  endpoints (``judgeforge grade --engine ray --model URL --model URL ...``);
- :class:`RayVLLMEngineJob` (``vllm_engine.vllm_engine_config``): backend (b), vLLM inside Ray Data
  (``ray.data.llm``) on GPUs;
- :func:`read_results`: the output shards as one Arrow table.

Importing this package does not import ray (it is imported when a job runs).
"""

from judgeforge.graders.distributed.job import (
    JobSummary,
    RayGradingJob,
    RayVLLMEngineJob,
    grade_on_ray,
)
from judgeforge.graders.distributed.shards import RESULT_COLUMNS, read_results

__all__ = ["RESULT_COLUMNS", "JobSummary", "RayGradingJob", "RayVLLMEngineJob", "grade_on_ray",
           "read_results"]
