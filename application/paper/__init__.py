"""The paper campaign: start it, measure its success criteria, drill the breaker, probe the chat, report daily."""
