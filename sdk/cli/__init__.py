"""The `judgeforge` command line."""

__all__: list[str] = []  # a namespace of modules: import them by name
