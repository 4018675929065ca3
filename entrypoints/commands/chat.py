"""`quorum chat`: the chat UI (Chainlit) in its own process, on the database the other programs use (docs/chat.md).

Before Chainlit starts: the database must be migrated to head (its history tables come from migration 0010), and
Chainlit's files go under `<data_dir>/chat` (its config.toml written by Quorum, uploads, translations) rather than
into the checkout. There is no anonymous chat: with neither QUORUM_API_KEY nor QUORUM_CHAT__USERS, an admin
password is generated once into `<data_dir>/chat/admin_password` and printed. The token secret is
QUORUM_CHAT__AUTH_SECRET, or one generated once into `<data_dir>/chat/auth_secret`. `--backtest latest|RUN_ID`
makes the chat read a recorded backtest run instead of the live account (QUORUM_CHAT__BACKTEST_RUN).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import typer

from application.chat.recorded_portfolio import RecordedRun, find_run
from domain.errors import DatabaseError
from entrypoints.bootstrap import fail, run, start
from entrypoints.container import Container, close_container
from entrypoints.database_schema import SchemaBehindError, ensure_schema
from entrypoints.logging_setup import register_secret
from entrypoints.settings import Settings
from entrypoints.wiring.embeddings import check_embeddings

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


def generated_once(path: Path, nbytes: int) -> str:
    """The secret in `path`, generated into it (mode 0600) the first time."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()


def auth_secret(settings: Settings, root: Path) -> str:
    """QUORUM_CHAT__AUTH_SECRET, or the secret generated once into `root/auth_secret` (mode 0600)."""
    if settings.chat.auth_secret is not None:
        return settings.chat.auth_secret.get_secret_value()
    return generated_once(root / "auth_secret", 48)


def asyncpg_dsn(url: str) -> str:
    """The database URL as asyncpg (Chainlit's data layer) reads it: without SQLAlchemy's `+asyncpg`."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def admin_login(settings: Settings, root: Path) -> Path | None:
    """Make sure somebody can log in, and nobody anonymous: with neither an API key nor chat users configured, the
    password of user `admin` generated once into `root/admin_password` (mode 0600) becomes the one chat user
    (QUORUM_CHAT__USERS in this process's environment, read again when Chainlit starts) and its file is returned."""
    if settings.api_key is not None or settings.chat.users:
        return None
    path = root / "admin_password"
    password = generated_once(path, 18)
    register_secret(password)
    os.environ["QUORUM_CHAT__USERS"] = json.dumps({"admin": password})
    typer.echo(f"log in as admin with password: {password} (saved in {path}; set QUORUM_API_KEY or "
               "QUORUM_CHAT__USERS to choose your own)")
    return path


async def recorded_run(container: Container, which: str) -> RecordedRun | None:
    """The finished backtest run `which` ("latest" or a run id) in the container's database, or None."""
    try:
        return await find_run(container.uow_factory(), which, tz=container.calendar().tz)
    finally:
        await close_container(container)


async def check_chat_embeddings(container: Container) -> None:
    """The embedding model of the event search is here and made every stored vector (`check_embeddings`)."""
    try:
        await check_embeddings(container.embedder(), container.embedding_store())
    finally:
        await close_container(container)


def check_database(url: str, description: str, *, embedded: bool) -> None:
    """Refuse to start on a database that is unreachable or (external) not migrated to head; the embedded one is
    upgraded (the chat keeps its history in tables of migration 0010)."""
    try:
        ensure_schema(url, description, embedded=embedded)
    except SchemaBehindError as exc:
        fail(str(exc), exc.exit_code)
    except DatabaseError as exc:
        fail(str(exc), 1)


def chat(
    host: str | None = typer.Option(None, "--host", help="address to listen on (default settings.chat.host, "
                                    "127.0.0.1; 0.0.0.0 in a container)"),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="port (default settings.chat.port, 8001)"),
    backtest: str | None = typer.Option(None, "--backtest", metavar="latest|RUN_ID", help="read a recorded "
                                        "backtest run (the latest one, or this run id) instead of the live account; "
                                        "control actions are then refused"),
) -> None:
    """Open the chat UI: ask Quorum questions and give it orders, in a browser (log in as admin with the API key,
    or with the password printed at start when no key is set)."""
    settings, container = start()
    try:
        url, description = container.database()
    except (DatabaseError, ValueError) as exc:
        fail(str(exc), 1)
    check_database(url, description, embedded=not settings.effective_database_url)
    run(check_chat_embeddings(container))
    which = backtest or settings.chat.backtest_run
    if which is not None:
        try:
            found = run(recorded_run(container, which))
        except ValueError as exc:
            fail(f"--backtest: {exc}")
        if found is None:
            what = "no finished backtest run" if which.strip() == "latest" else f"no finished backtest run {which!r}"
            fail(f"{what} in the database ({description}): run `make demo` or `quorum backtest` first")
        os.environ["QUORUM_CHAT__BACKTEST_RUN"] = found.run_id
        typer.echo(f"reading the recorded {found.label} ({found.period}); control actions are off")
    root = prepare_app_root((settings.data_dir / "chat").resolve())
    admin_login(settings, root)
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
