"""Judge models: the ChatModel contract, the OpenAI-compatible client and managed vLLM servers.

Everything beyond the contract is loaded lazily, so ``import judgeforge.models`` never imports
openai, torch, vllm or transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from judgeforge.models.base import (
    ChatChoice,
    ChatModel,
    ChatOptions,
    ChatResponse,
    TokenLogprob,
    Usage,
)

_LAZY: dict[str, str] = {
    "OpenAIChatModel": "judgeforge.models.openai_chat",
    "RetryPolicy": "judgeforge.models.retry",
    "VLLMServer": "judgeforge.models.vllm_server",
    "build_vllm_command": "judgeforge.models.vllm_server",
    "build_vllm_env": "judgeforge.models.vllm_server",
    "detect_device": "judgeforge.models.vllm_server",
    "prepare_default_model": "judgeforge.models.default_model",
    "default_model_path": "judgeforge.models.default_model",
    "judgeforge_home": "judgeforge.models.default_model",
    "ScriptedChatModel": "judgeforge.models.mock",
}

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and IDEs
    from judgeforge.models.default_model import (
        default_model_path,
        judgeforge_home,
        prepare_default_model,
    )
    from judgeforge.models.mock import ScriptedChatModel
    from judgeforge.models.openai_chat import OpenAIChatModel
    from judgeforge.models.retry import RetryPolicy
    from judgeforge.models.vllm_server import (
        VLLMServer,
        build_vllm_command,
        build_vllm_env,
        detect_device,
    )

__all__ = [
    "ChatChoice", "ChatModel", "ChatOptions", "ChatResponse", "TokenLogprob", "Usage",
    # lazy (see _LAZY)
    "OpenAIChatModel", "RetryPolicy", "ScriptedChatModel", "VLLMServer", "build_vllm_command",
    "build_vllm_env", "default_model_path", "detect_device", "judgeforge_home",
    "prepare_default_model",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'judgeforge.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
