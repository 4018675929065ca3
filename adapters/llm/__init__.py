"""LLM adapters: LiteLLM (real providers), ReplayLLM (record and replay), the chat's tool-calling LiteLLMChat and
ChatCassette, and the JSON output helpers.

Importing this package does not import litellm: `LiteLLM` loads it on its first call.
"""

from adapters.llm.chat_cassette import ChatCassette
from adapters.llm.json_output import InvalidOutputError, parse_output, schema_instructions
from adapters.llm.litellm_adapter import LiteLLM, LLMCallFailedError
from adapters.llm.litellm_chat import LiteLLMChat
from adapters.llm.replay import ReplayLLM

__all__ = ["ChatCassette", "InvalidOutputError", "LLMCallFailedError", "LiteLLM", "LiteLLMChat", "ReplayLLM",
           "parse_output", "schema_instructions"]
