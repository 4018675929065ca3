"""`quorum chat`: the chat UI (Chainlit) in its own process, on the database the other programs use (docs/chat.md).

Before Chainlit starts: a login must be possible (QUORUM_API_KEY or QUORUM_CHAT__USERS; there is no anonymous
chat), the database must be migrated to head (its history tables come from migration 0010), and Chainlit's files
go under `<data_dir>/chat` (its config.toml written by Quorum, uploads, translations) rather than into the
checkout. The token secret is QUORUM_CHAT__AUTH_SECRET, or one generated once into `<data_dir>/chat/auth_secret`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import typer

from adapters.postgres import migrate
from domain.errors import DatabaseError
from entrypoints.bootstrap import fail, start
from entrypoints.settings import Settings

APP = Path(__file__).resolve().parents[1] / "chat" / "app.py"
CHAINLIT_VERSION = "2.12.0"
CONFIG_TOML = f"""# Written by `quorum chat` at every start: edit entrypoints/commands/chat.py, not this file.
[project]
user_env = []
session_timeout = 3600
user_session_timeout = 86400
cache = false
persist_user_env = false
mask_user_env = true
allow_origins = ["*"]

[features]
unsafe_allow_html = false
latex = false
user_message_markdown = true
user_message_autoscroll = false
assistant_message_autoscroll = true
auto_tag_thread = false
edit_message = false
allow_thread_sharing = false
favorites = false

[features.spontaneous_file_upload]
enabled = false

[features.audio]
enabled = false

[features.mcp]
enabled = false

[UI]
name = "Quorum"
description = "Ask Quorum about its portfolio, performance and decisions; pause or resume trading."
cot = "full"
confirm_new_chat = false
alert_style = "classic"
logo_file_url = ""
default_avatar_file_url = ""

[meta]
generated_by = "{CHAINLIT_VERSION}"
"""
README = """# Quorum chat

Ask about the portfolio, performance (today, this week, this month, all time), recent events, why a trade was made,
or give an order: pause, resume, run a cycle, run the evals, flatten. Every order asks for a confirmation first.
Each tool the assistant uses is shown as a step with its input and output.
"""
THEME = '{"custom_fonts": []}\n'  # no Google Fonts link in the page: the UI works offline
LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" width="168" height="44" viewBox="0 0 168 44">'
        '<text x="2" y="34" font-family="sans-serif" font-size="34" font-weight="700" fill="{fill}">Quorum</text>'
        '</svg>\n')


def prepare_app_root(root: Path) -> Path:
    """Write Chainlit's config.toml, its readme, Quorum's logo and a theme without external fonts under `root`."""
    (root / ".chainlit").mkdir(parents=True, exist_ok=True)
    (root / "public").mkdir(exist_ok=True)
    (root / ".chainlit" / "config.toml").write_text(CONFIG_TOML)
    (root / "chainlit.md").write_text(README)
    (root / "public" / "theme.json").write_text(THEME)
    for theme, fill in (("dark", "#f5f5f5"), ("light", "#1a1a1a")):
        (root / "public" / f"logo_{theme}.svg").write_text(LOGO.format(fill=fill))
    return root


def auth_secret(settings: Settings, root: Path) -> str:
    """QUORUM_CHAT__AUTH_SECRET, or the secret generated once into `root/auth_secret` (mode 0600)."""
    if settings.chat.auth_secret is not None:
        return settings.chat.auth_secret.get_secret_value()
    path = root / "auth_secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def asyncpg_dsn(url: str) -> str:
    """The database URL as asyncpg (Chainlit's data layer) reads it: without SQLAlchemy's `+asyncpg`."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def check_login_possible(settings: Settings) -> None:
    """Refuse to run a chat nobody could log in to (and so nobody anonymous either)."""
    if settings.api_key is None and not settings.chat.users:
        fail("the chat needs a login and has none: set QUORUM_API_KEY (then log in as 'admin' with the key as "
             "password, or send it as the x-api-key header) or QUORUM_CHAT__USERS; it never runs without login")


def check_database(url: str, description: str) -> None:
    """Refuse to start on a database that is unreachable or not migrated to head."""
    try:
        st = migrate.status(url)
    except Exception as exc:  # noqa: BLE001 - any connection failure is reported the same way
        fail(f"cannot reach {description}: {exc}", 1)
    if not st.at_head:
        fail(f"the database ({description}) is at migration {st.current_revision or 'none'}, not at head "
             f"{st.head_revision}: run `quorum db upgrade` first (the chat keeps its history in tables of "
             "migration 0010)", 1)


def chat(
    host: str | None = typer.Option(None, "--host", help="address to listen on (default settings.chat.host, "
                                    "127.0.0.1; 0.0.0.0 in a container)"),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="port (default settings.chat.port, 8001)"),
) -> None:
    """Open the chat UI: ask Quorum questions and give it orders, in a browser (log in as admin with the API key)."""
    settings, container = start()
    check_login_possible(settings)
    try:
        url, description = container.database()
    except (DatabaseError, ValueError) as exc:
        fail(str(exc), 1)
    check_database(url, description)
    root = prepare_app_root((settings.data_dir / "chat").resolve())
    os.environ.update({
        "CHAINLIT_APP_ROOT": str(root),
        "CHAINLIT_AUTH_SECRET": auth_secret(settings, root),
        "DATABASE_URL": asyncpg_dsn(url),
        "CHAINLIT_HOST": host or settings.chat.host,
        "CHAINLIT_PORT": str(port or settings.chat.port),
    })
    typer.echo(f"chat on http://{os.environ['CHAINLIT_HOST']}:{os.environ['CHAINLIT_PORT']} "
               f"(history in {description})")
    run_chainlit()


def run_chainlit() -> None:
    """Run Chainlit on entrypoints/chat/app.py in this process (its settings are read from the environment)."""
    from chainlit.cli import run_chainlit as run
    from chainlit.config import config

    config.run.headless = True
    run(str(APP))
