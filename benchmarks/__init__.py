"""judgeforge.benchmarks"""
