"""The `judgeforge` command line."""
