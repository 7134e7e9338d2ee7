"""``judgeforge demo``: the whole loop on the embedded default (CPU, SmolLM2, Prometheus data)."""

__all__: list[str] = []  # a namespace of modules: import them by name
