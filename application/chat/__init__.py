"""The chat assistant's use cases: six tools over the running system, a tool-calling agent and a deterministic
router for when no model is configured (docs/chat.md)."""
