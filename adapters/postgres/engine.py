"""Async engine and session factory; the embedded server when no URL is configured."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from adapters.postgres.embedded import ensure_embedded_database


def resolve_database_url(url: str | None, embedded_dir: Path) -> tuple[str, str]:
    """Return (SQLAlchemy asyncpg URL, human description) for `url` or the embedded server."""
    if url:
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://"):]
        if url.startswith("postgresql://"):
            url = "postgresql+asyncpg://" + url[len("postgresql://"):]
        if not url.startswith("postgresql+asyncpg://"):
            scheme = url.split("://", 1)[0]
            raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got scheme {scheme!r}")
        return url, f"external PostgreSQL at {describe_url(url)}"
    resolved = ensure_embedded_database(embedded_dir)
    return resolved, f"embedded PostgreSQL in {embedded_dir.expanduser().resolve()}"


def describe_url(url: str) -> str:
    """host:port/database of a URL (or socket directory and database), without user or password."""
    parts = urlsplit(url)
    socket = parse_qs(parts.query).get("host")
    if not parts.hostname and socket:
        return f"socket {socket[0]}{parts.path}"
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path}"


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An asyncpg engine; vectors travel in pgvector's text format (pgvector.sqlalchemy.Vector)."""
    return create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:  # type: ignore[type-arg]
    """Session factory that does not expire objects on commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
