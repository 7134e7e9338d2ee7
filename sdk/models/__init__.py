"""Judge models: the ChatModel contract, the OpenAI-compatible client and managed vLLM servers."""

from judgeforge.models.base import ChatChoice, ChatModel, ChatResponse, TokenLogprob, Usage

__all__ = ["ChatChoice", "ChatModel", "ChatResponse", "TokenLogprob", "Usage"]
