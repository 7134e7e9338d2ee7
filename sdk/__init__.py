"""judgeforge: train, serve and use generative pointwise reward models.

The public API is re-exported here and loaded lazily (``import judgeforge`` stays light: it never
imports torch, vllm, verl or ray).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # errors
    "JudgeforgeError": "judgeforge.errors",
    "MissingExtraError": "judgeforge.errors",
    "DataError": "judgeforge.errors",
    "ConfigError": "judgeforge.errors",
    "ServerError": "judgeforge.errors",
    "StateError": "judgeforge.errors",
    "StorageError": "judgeforge.errors",
    "UsageError": "judgeforge.errors",
    "ModelResponseError": "judgeforge.errors",
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

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from judgeforge.data.io import LoadResult, load_records, write_records
    from judgeforge.data.schema import (
        DatasetInfo,
        Message,
        PointwiseOutput,
        PointwiseRecord,
        Scale,
    )
    from judgeforge.data.split import stratified_split
    from judgeforge.data.validate import RowError
    from judgeforge.errors import (
        ConfigError,
        DataError,
        JudgeforgeError,
        MissingExtraError,
        ModelConnectionError,
        ModelError,
        ModelRateLimitError,
        ModelResponseError,
        ModelStatusError,
        ModelTimeoutError,
        ServerError,
        StateError,
        StorageError,
        UsageError,
    )
    from judgeforge.metrics import compute_metrics
    from judgeforge.models.base import ChatModel, ChatOptions, ChatResponse
    from judgeforge.models.default_model import prepare_default_model
    from judgeforge.models.mock import ScriptedChatModel
    from judgeforge.models.openai_chat import OpenAIChatModel
    from judgeforge.models.vllm_server import VLLMServer
    from judgeforge.parsing import ParsedScore, ParseFailure, parse_score
    from judgeforge.prompt import PromptTemplate, build_messages
    from judgeforge.rewards import exact_match_reward, exp_decay_reward, quadratic_reward

# a literal list (type checkers read it); tests/test_public_api.py keeps it equal to _EXPORTS
__all__ = [
    "ChatModel", "ChatOptions", "ChatResponse", "ConfigError", "DataError", "DatasetInfo",
    "JudgeforgeError", "LoadResult", "Message", "MissingExtraError", "ModelConnectionError",
    "ModelError", "ModelRateLimitError", "ModelResponseError", "ModelStatusError",
    "ModelTimeoutError", "OpenAIChatModel", "ParseFailure", "ParsedScore", "PointwiseOutput",
    "PointwiseRecord", "PromptTemplate", "RowError", "Scale", "ScriptedChatModel", "ServerError",
    "StateError", "StorageError", "UsageError", "VLLMServer", "build_messages", "compute_metrics",
    "exact_match_reward", "exp_decay_reward", "load_records", "parse_score",
    "prepare_default_model", "quadratic_reward", "stratified_split", "write_records",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'judgeforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
