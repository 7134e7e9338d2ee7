"""``judgeforge bench suite``: judges against human labels over many sets, with published
anchors, trivial baselines and human ceilings side by side (see :mod:`.run`)."""

from judgeforge.benchmarks.suite.run import arun_suite, run_suite
from judgeforge.benchmarks.suite.spec import Suite, SuiteSet, load_suite, shipped_suites

__all__ = ["Suite", "SuiteSet", "arun_suite", "load_suite", "run_suite", "shipped_suites"]
