"""judgeforge.benchmarks: judge quality against human labels, and grading throughput.

``judgeforge bench quality`` / :func:`run_quality` and ``judgeforge bench throughput`` /
:func:`run_throughput`. Importing this package never imports torch, vllm or matplotlib (plots
and servers are loaded when used).
"""

from judgeforge.benchmarks.judges import JudgeSpec, open_judge, parse_judge_spec, parse_judge_specs
from judgeforge.benchmarks.quality import arun_quality, run_quality
from judgeforge.benchmarks.report import quality_markdown, quality_table, throughput_markdown
from judgeforge.benchmarks.throughput import VARIANTS, arun_throughput, run_throughput

__all__ = [
    "JudgeSpec",
    "parse_judge_spec",
    "parse_judge_specs",
    "open_judge",
    "run_quality",
    "arun_quality",
    "run_throughput",
    "arun_throughput",
    "VARIANTS",
    "quality_table",
    "quality_markdown",
    "throughput_markdown",
]
