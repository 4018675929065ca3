"""LLM adapters: LiteLLM (real providers), ReplayLLM (record and replay) and the JSON output helpers.

Importing this package does not import litellm: `LiteLLM` loads it on its first call.
"""

from adapters.llm.json_output import InvalidOutputError, parse_output, schema_instructions
from adapters.llm.litellm_adapter import LiteLLM, LLMCallFailedError
from adapters.llm.replay import ReplayLLM

__all__ = ["InvalidOutputError", "LLMCallFailedError", "LiteLLM", "ReplayLLM", "parse_output", "schema_instructions"]
