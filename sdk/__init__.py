"""judgeforge: train, serve and use generative pointwise reward models.

The public API is re-exported here and loaded lazily (``import judgeforge`` stays light: it never
imports torch, vllm, verl or ray).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "JudgeforgeError": "judgeforge.errors",
    "MissingExtraError": "judgeforge.errors",
    "DataError": "judgeforge.errors",
    "ConfigError": "judgeforge.errors",
    "ServerError": "judgeforge.errors",
    "ModelError": "judgeforge.errors",
    "ModelConnectionError": "judgeforge.errors",
    "ModelTimeoutError": "judgeforge.errors",
    "ModelStatusError": "judgeforge.errors",
    "ModelRateLimitError": "judgeforge.errors",
    # data
    "Message": "judgeforge.data.schema",
    "PointwiseOutput": "judgeforge.data.schema",
    "PointwiseRecord": "judgeforge.data.schema",
    "Scale": "judgeforge.data.schema",
    "DatasetInfo": "judgeforge.data.schema",
    "RowError": "judgeforge.data.validate",
    "load_records": "judgeforge.data.io",
    "write_records": "judgeforge.data.io",
    "LoadResult": "judgeforge.data.io",
    "stratified_split": "judgeforge.data.split",
    # prompt, parsing, rewards, metrics
    "PromptTemplate": "judgeforge.prompt",
    "build_messages": "judgeforge.prompt",
    "parse_score": "judgeforge.parsing",
    "ParsedScore": "judgeforge.parsing",
    "ParseFailure": "judgeforge.parsing",
    "exp_decay_reward": "judgeforge.rewards",
    "quadratic_reward": "judgeforge.rewards",
    "exact_match_reward": "judgeforge.rewards",
    "compute_metrics": "judgeforge.metrics",
    # models
    "ChatModel": "judgeforge.models.base",
    "ChatOptions": "judgeforge.models.base",
    "ChatResponse": "judgeforge.models.base",
    "OpenAIChatModel": "judgeforge.models.openai_chat",
    "VLLMServer": "judgeforge.models.vllm_server",
    "prepare_default_model": "judgeforge.models.default_model",
    "ScriptedChatModel": "judgeforge.models.mock",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'judgeforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
