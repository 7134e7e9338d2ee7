"""Batch grading: :class:`GradingRunner`, :class:`GraderConfig`, mappers, checkpoints, aggregators.

OpenJudge-compatible (``GradingRunner(grader_configs=..., max_concurrency=...,
aggregators=..., show_progress=...)``, ``await runner.arun(dataset)``), with crash-safe JSONL
output and resume.
"""

from judgeforge.graders.runner.aggregators import WeightedMean
from judgeforge.graders.runner.checkpoint import Checkpoint, CheckpointEntry, row_key, row_keys
from judgeforge.graders.runner.config import (
    GraderConfig,
    Mapper,
    MappingError,
    apply_mapper,
    record_mapper,
    resolve_path,
)
from judgeforge.graders.runner.runner import GradingRunner, RunSummary

__all__ = [
    "GradingRunner",
    "RunSummary",
    "GraderConfig",
    "Mapper",
    "MappingError",
    "apply_mapper",
    "record_mapper",
    "resolve_path",
    "WeightedMean",
    "Checkpoint",
    "CheckpointEntry",
    "row_key",
    "row_keys",
]
