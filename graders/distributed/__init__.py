"""Grading on Ray Data: the same graders as ``GradingRunner``, over many replicas.

- :class:`RayGradingJob` / :func:`grade_on_ray`: backend (a), a set of OpenAI-compatible
  endpoints (``judgeforge grade --engine ray --model URL --model URL ...``);
- :func:`vllm_engine_config` / :func:`build_vllm_processor`: backend (b), vLLM inside Ray Data
  (``ray.data.llm``) on GPUs;
- :func:`read_results`: the output shards as one Arrow table.

Importing this package does not import ray (it is imported when a job runs).
"""

from judgeforge.graders.distributed.job import JobSummary, RayGradingJob, grade_on_ray
from judgeforge.graders.distributed.shards import RESULT_COLUMNS, read_results

__all__ = ["RayGradingJob", "JobSummary", "grade_on_ray", "read_results", "RESULT_COLUMNS"]
