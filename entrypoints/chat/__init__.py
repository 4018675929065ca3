"""The chat UI (`quorum chat`): a Chainlit app over the chat assistant, with history on our Postgres (docs/chat.md)."""
