"""Tracing adapters: `TracedLLM` (any LLM's calls as "llm" spans) and `LangSmithTracer`
(adapters.tracing.langsmith_tracer).

Importing this package does not import langsmith: only the LangSmith tracer's module does, and the container
imports it only when LANGSMITH_TRACING=true.
"""

from adapters.tracing.traced_llm import TracedLLM, langsmith_usage, usage_metadata

__all__ = ["TracedLLM", "langsmith_usage", "usage_metadata"]
