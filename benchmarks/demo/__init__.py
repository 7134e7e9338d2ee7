"""``judgeforge demo``: the whole loop on the embedded default (CPU, SmolLM2, Prometheus data)."""
