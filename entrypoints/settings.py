"""Settings, loaded from the environment (prefix QUORUM_) and a .env file.

Nested values use a double underscore: QUORUM_RISK__MAX_POSITION_PCT=0.1.
A wrong value stops start-up with a message naming the setting
(see `load_settings`).
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from domain.discovery.config import DiscoverySettings
from domain.errors import ConfigurationError
from domain.events import Severity
from domain.risk.config import RiskSettings

KNOWN_EMBEDDING_MODELS: dict[str, int] = {
    "BAAI/bge-small-en-v1.5": 384,
    "sentence-transformers/all-MiniLM-L6-v2": 384,
    "all-MiniLM-L6-v2": 384,
    "BAAI/bge-base-en-v1.5": 768,
    "sentence-transformers/all-mpnet-base-v2": 768,
}
PACKAGED_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
KNOWN_LLM_PROVIDERS = ("offline", "anthropic/", "openai/", "gemini/", "ollama/", "azure/", "bedrock/", "groq/",
                       "mistral/", "openrouter/", "together_ai/", "deepseek/", "hosted_vllm/", "vertex_ai/")
LIVE_TRADING_ACK = "I_UNDERSTAND"
NO_DOTENV = "QUORUM_NO_DOTENV"
"""Set (to anything) to keep `.env` out of the settings: the test suite sets it for itself and its subprocesses."""


class DatabaseSettings(BaseModel):
    """Where Postgres is. No URL: the embedded server under `embedded_dir` (default `<data_dir>/pgdata`)."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr | None = None
    embedded_dir: Path = Field(Path(".quorum/pgdata"), description="the embedded server's data directory; "
                               "default <data_dir>/pgdata, made absolute when the settings load")
    echo: bool = False


class EmbeddingSettings(BaseModel):
    """Which sentence-transformers model embeds memory texts: exactly that one (a missing model is an error, never
    replaced by another); every stored vector records the model that made it (docs/embeddings.md)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(PACKAGED_EMBEDDING_MODEL, description="the packaged all-MiniLM-L6-v2 (available offline "
                       "everywhere) by default; the Docker image sets BAAI/bge-small-en-v1.5, baked into it. "
                       "Changing it: `quorum memory reembed`")
    dimension: int = Field(384, gt=0)
    batch_size: int = Field(64, ge=1, le=4096)
    allow_download: bool = Field(False, description="let a model missing from the Hugging Face cache be "
                                 "downloaded (else it must be there: HF_HOME)")
    device: str = "cpu"
    threads: int = Field(0, ge=0, le=64, description="CPU threads of the model (torch or ONNX Runtime intra-op); "
                         "0: one per CPU, at most 4 (idle threads sleep, so a busy machine loses nothing)")
    backend: Literal["auto", "bf16", "onnx", "torch"] = Field(
        "auto", description="torch: SentenceTransformer.encode in float32; bf16: the same with bfloat16 matrix "
        "products (CPUs with native bfloat16 only); onnx: the model exported into cache_dir and run by ONNX Runtime; "
        "auto: bf16, else onnx, else torch. A backend is used only when its vectors are within 1e-3 cosine of "
        "torch's (else the next one, with a logged reason). See docs/embeddings.md")
    cache_dir: Path = Field(Path(".quorum/models"), description="where the ONNX export of the model is kept")

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v in KNOWN_EMBEDDING_MODELS or Path(v).expanduser().is_dir():
            return v
        known = ", ".join(sorted(KNOWN_EMBEDDING_MODELS))
        raise ValueError(f"unknown embedding model {v!r}; use one of {known} or a local model directory")


class BrokerSettings(BaseModel):
    """Which broker executes orders. `sim` is the in-memory paper broker.

    `data_feed` is the feed of quotes, snapshots and minute bars (``iex`` is real time on the free plan).
    `bars_feed` is the feed of daily bars: ``sip`` (consolidated volume, what the backtests and the
    dollar-volume filter assume; the free plan serves it up to 15 minutes ago) or ``iex`` (IEX-only volume).
    """

    model_config = ConfigDict(extra="forbid")

    provider: Literal["sim", "alpaca"] = "sim"
    paper: bool = True
    alpaca_api_key: SecretStr | None = None
    alpaca_secret_key: SecretStr | None = None
    trading_url: str | None = None
    data_url: str | None = None
    data_feed: Literal["iex", "sip"] = "iex"
    bars_feed: Literal["sip", "iex"] = "sip"
    timeout_seconds: float = Field(10, gt=0)


class ModelPrice(BaseModel):
    """A model's list price in USD per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input_per_million: float = Field(ge=0)
    output_per_million: float = Field(ge=0)
    cached_input_per_million: float | None = Field(None, ge=0, description="prompt tokens read from the "
                                                   "provider's prompt cache (default: the input price)")
    cache_write_per_million: float | None = Field(None, ge=0, description="prompt tokens written to the prompt "
                                                  "cache (Anthropic; default: 1.25 times the input price)")


class LLMSettings(BaseModel):
    """Which model each agent uses; `offline` is the deterministic policy."""

    model_config = ConfigDict(extra="forbid")

    signal_model: str = "offline"
    risk_model: str = "offline"
    validator_model: str = "offline"
    picker_model: str = "offline"
    api_base: str | None = None
    anthropic_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    daily_cap_usd: float | None = Field(None, ge=0, description="the day's LLM spend cap in USD (one ledger for the "
                                        "agents, the discovery picker, the chat and the nightly evals; 0: no paid "
                                        "call); unset: daily_cap_share_of_equity of the account's equity at the "
                                        "day's start (docs/llm-budget.md)")
    daily_cap_share_of_equity: float = Field(0.05 / 650, ge=0, le=0.01, description="the derived daily cap as a "
                                             "share of equity: 0.05 USD a day for 650 USD (about 0.0077%; 2.8% of "
                                             "the account over 365 days)")
    output_tokens_per_symbol: int | None = Field(150, ge=16, le=4000, description="completion tokens an agent call "
                                                 "may use per symbol asked about (plus 64), at most "
                                                 "max_output_tokens; what the cap reserves for it. None: "
                                                 "max_output_tokens for every call")
    prices: dict[str, ModelPrice] = Field(default_factory=dict, description="model string -> price per million "
                                          "tokens, e.g. {\"openai/my-model\": {\"input_per_million\": 0.15, "
                                          "\"output_per_million\": 0.6}}; wins over litellm's cost map. A paid model "
                                          "priced by neither is refused at start-up")
    max_output_tokens: int = Field(4096, ge=16, le=200_000, description="completion token limit of one call; "
                                   "with the prompt's size and the price, the worst case reserved against the cap")
    call_estimate_usd: float | None = Field(None, ge=0, description="reserve this much per paid call against the "
                                            "daily cap instead of the worst case computed from prices")
    timeout_seconds: float = Field(30, gt=0)
    max_retries: int = Field(3, ge=0, le=10)
    concurrency: int = Field(4, ge=1, le=64)
    replay_dir: Path | None = None
    record: bool = False
    replay_reports_cost: bool = Field(False, description="a replayed answer reports what it cost when recorded "
                                      "(nothing is spent), so a replayed backtest is charged as the recorded one")
    reuse_decisions: bool = Field(True, description="keep an agent decision about a symbol for the session and "
                                  "ask again only when its inputs change (a new daily bar, a fill, a position or "
                                  "stop change, an event cycle, a price move of reuse_price_move_pct); off, every "
                                  "cycle asks about every candidate (the old behaviour, for benchmarks)")
    reuse_price_move_pct: float = Field(1.0, gt=0, le=100, description="a price move (percent, since the decision "
                                        "was made) that makes the agents be asked about a symbol again")
    compact_prompts: bool = Field(True, description="send the output schema once, numbers rounded to what a "
                                  "decision needs, no empty fields, the cycle time last (docs/prompts.md); off, "
                                  "the old prompts (for benchmarks)")
    compact_evidence: bool = Field(True, description="memory evidence only where it informs: past trades and "
                                   "market conditions whose outcome was known at the cycle, one per symbol and "
                                   "day, within evidence_max_distance, reasoning cut to evidence_reasoning_chars, "
                                   "a summary for the validator; off, the nearest ones as recalled (the old "
                                   "behaviour)")
    evidence_max_distance: float | None = Field(None, gt=0, le=2, description="cosine distance beyond which a "
                                                "past trade or market condition is not shown as similar; unset: "
                                                "the rule validator's (QUORUM_RISK__VALIDATOR__MAX_DISTANCE, 0.6)")
    evidence_fetch_factor: int = Field(1, ge=1, le=10, description="recall this many times the evidence shown "
                                       "and keep the nearest that inform; 1: only the nearest are considered, so "
                                       "the rule validator and the offline policy decide as before; more shows "
                                       "more closed trades (the memory veto then acts more often)")
    evidence_reasoning_chars: int = Field(200, ge=0, le=2000, description="most characters of a past trade's "
                                          "reasoning shown to the agents")
    evidence_trades: int = Field(5, ge=1, le=20, description="similar past trades shown per entry candidate")
    evidence_conditions: int = Field(3, ge=1, le=20, description="similar past market conditions shown")
    prompt_caching: bool = Field(True, description="mark the system prompt of Anthropic models for prompt "
                                 "caching (OpenAI caches by itself); applies once the stable prefix is long "
                                 "enough for the provider (1,024-2,048 tokens)")

    @field_validator("signal_model", "risk_model", "validator_model", "picker_model")
    @classmethod
    def _known_provider(cls, v: str) -> str:
        if v == "offline" or v.startswith(KNOWN_LLM_PROVIDERS[1:]):
            return v
        raise ValueError(f"unknown model {v!r}; use 'offline' or a litellm model string with a provider prefix "
                         f"({', '.join(p.rstrip('/') for p in KNOWN_LLM_PROVIDERS[1:])})")


class ScheduleSettings(BaseModel):
    """When the background jobs run (see `application.schedule`) and where backups go."""

    model_config = ConfigDict(extra="forbid")

    cycle_minutes: int = Field(30, ge=1, le=390)
    discovery_hours: int = Field(4, ge=1, le=24)
    backup_keep_days: int = Field(7, ge=1, le=3650)
    backup_dir: Path = Field(Path(".quorum/backups"), description="where backups go; default <data_dir>/backups, "
                             "made absolute when the settings load")


class AlertSettings(BaseModel):
    """Where alerts go: a Discord webhook and/or email through AWS SES (the log when neither is set)."""

    model_config = ConfigDict(extra="forbid")

    discord_webhook_url: SecretStr | None = None
    discord_min_severity: Severity = Severity.INFO
    ses_sender: str | None = None
    ses_recipients: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ses_region: str = "us-east-1"
    email_min_severity: Severity = Severity.CRITICAL
    log_min_severity: Severity = Severity.INFO
    large_position_change_pct: float = Field(0.2, gt=0, le=1)  # a fraction of equity
    max_attempts: int = Field(5, ge=1, le=20)
    backoff_seconds: float = Field(1.0, ge=0, le=600)
    routes: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("ses_recipients", mode="before")
    @classmethod
    def _split_recipients(cls, v: object) -> object:
        if isinstance(v, str):
            if v.lstrip().startswith("["):
                return json.loads(v)
            return [a.strip() for a in v.split(",") if a.strip()]
        return v

    @field_validator("discord_webhook_url")
    @classmethod
    def _http_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL (the Discord channel's webhook URL)")
        return v


class EvalSettings(BaseModel):
    """The nightly evals (02:00 New York time, see docs/evals.md): what answers and what they are held to."""

    model_config = ConfigDict(extra="forbid")

    nightly: bool = True
    nightly_llm: str = Field("offline", description="offline (the rule policy, free), settings (the configured "
                             "agents' models) or one litellm model string for every agent")
    datasets_dir: Path | None = Field(None, description="the datasets of `quorum evals build` (default: the "
                                      "project's evals/datasets)")
    baseline_file: Path | None = Field(None, description="the committed baseline run (default: the project's "
                                       "evals/baseline.json)")
    git_sha: str | None = Field(None, description="the deployed commit, stored with each run (default: "
                                "`git rev-parse HEAD` when the project is a git checkout)")

    @field_validator("nightly_llm")
    @classmethod
    def _known_llm(cls, v: str) -> str:
        if v in ("offline", "settings") or v.startswith(KNOWN_LLM_PROVIDERS[1:]):
            return v
        raise ValueError(f"use 'offline', 'settings' or a litellm model string with a provider prefix, got {v!r}")


class ChatSettings(BaseModel):
    """The chat assistant (`quorum chat`, docs/chat.md): its model, its users and the guards of its SQL tool."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("offline", description="offline (the deterministic router, no LLM) or a litellm model "
                       "string with tool calling; its spend counts against llm.daily_cap_usd")
    host: str = "127.0.0.1"
    port: int = Field(8001, ge=1, le=65535)
    auth_secret: SecretStr | None = Field(None, description="signs the chat's login tokens (CHAINLIT_AUTH_SECRET); "
                                          "generated into data_dir when unset")
    users: dict[str, SecretStr] = Field(default_factory=dict, description="browser logins: user name -> password "
                                        "(the API key is always accepted as the password of user 'admin')")
    sql_role: str = Field("quorum_chat", pattern=r"^[a-z_][a-z0-9_]{0,62}$",
                          description="the login role with SELECT on the chat views only")
    sql_password: SecretStr | None = Field(None, description="the chat role's password (generated into data_dir "
                                           "when unset)")
    sql_timeout_ms: int = Field(3000, ge=100, le=60_000)
    sql_max_rows: int = Field(200, ge=1, le=5000)
    sql_max_cell_chars: int = Field(2000, ge=16, le=100_000)
    confirm_timeout_s: int = Field(60, ge=5, le=600)
    max_tool_rounds: int = Field(6, ge=1, le=20)
    index_events: bool = Field(True, description="embed events for the chat's event search as cycles write them")
    backtest_run: str | None = Field(None, min_length=1, max_length=80, description="read this recorded backtest "
                                     "run (a run id, or 'latest') instead of the live account; set by "
                                     "`quorum chat --backtest`")

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        if v == "offline" or v.startswith(KNOWN_LLM_PROVIDERS[1:]):
            return v
        raise ValueError(f"use 'offline' or a litellm model string with a provider prefix, got {v!r}")


class TracingSettings(BaseModel):
    """LangSmith tracing of the cycles (off by default: then nothing is imported or sent).

    Read from LangSmith's own variables: LANGSMITH_TRACING, LANGSMITH_ENDPOINT, LANGSMITH_API_KEY, LANGSMITH_PROJECT.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    endpoint: str | None = None
    api_key: SecretStr | None = None
    project: str = "quorum"


class ApiSettings(BaseModel):
    """The HTTP API (`quorum serve`): who may read without the key, which Host headers it answers, /ready's cache."""

    model_config = ConfigDict(extra="forbid")

    open_reads_on_loopback: bool = Field(True, description="GET endpoints answer loopback clients without the API "
                                         "key (never when the request came through a proxy)")
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Host names the API answers besides localhost, 127.0.0.1 and [::1], "
        "comma-separated or a JSON list (e.g. api,quorum.example.com,*.example.com; '*' turns the check off)")
    ready_broker_cache_s: float = Field(30.0, ge=0, le=3600, description="how long /ready reuses the broker "
                                        "check's last answer")

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, v: object) -> object:
        if isinstance(v, str):
            if v.lstrip().startswith("["):
                return json.loads(v)
            return [h.strip() for h in v.split(",") if h.strip()]
        return v

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, v: list[str]) -> list[str]:
        for host in v:
            if not host or ("*" in host and host != "*" and not (host.startswith("*.") and "*" not in host[2:])):
                raise ValueError(f"an allowed host is a name, '*.domain' or '*', got {host!r}")
        return v


class ReportingSettings(BaseModel):
    """The currency reports, the API and the chat show beside USD (the account always trades in USD)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: Literal["USD", "GBP", "EUR"] = Field("USD", description="shown beside USD (USD: nothing beside)")
    fx_rate: Decimal | None = Field(None, gt=0, description="units of `currency` per USD, e.g. 0.79; unset: "
                                    "fetched from fx_url once a day")
    fx_url: str = Field("https://api.frankfurter.app", description="Frankfurter-compatible rate service")
    fx_timeout_s: float = Field(5.0, gt=0, le=60)

    @field_validator("currency", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v


def _langsmith(name: str) -> AliasChoices:
    return AliasChoices(f"LANGSMITH_{name}", f"QUORUM_LANGSMITH_{name}")


class Settings(BaseSettings):
    """All of Quorum's settings."""

    model_config = SettingsConfigDict(
        env_prefix="QUORUM_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then `.env` (not read when QUORUM_NO_DOTENV is set: the tests)."""
        if os.environ.get(NO_DOTENV):
            return init_settings, env_settings, file_secret_settings
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    env: Literal["live", "backtest", "test"] = "live"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = Field("auto", description="auto: short readable lines when "
                                                           "stderr is a terminal, one JSON object per line otherwise")
    data_dir: Path = Field(Path(".quorum"), description="Quorum's own files (the embedded database, backups, chat "
                           "files, reports): relative to the working directory at start-up, then kept absolute")
    database_url: SecretStr | None = Field(None, validation_alias=AliasChoices("DATABASE_URL", "QUORUM_DATABASE_URL"))
    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "QUORUM_REDIS_URL"))
    live_trading: str | None = None
    api_key: SecretStr | None = None
    database: DatabaseSettings = DatabaseSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    broker: BrokerSettings = BrokerSettings()
    llm: LLMSettings = LLMSettings()
    risk: RiskSettings = RiskSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    alerts: AlertSettings = AlertSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    evals: EvalSettings = EvalSettings()
    chat: ChatSettings = ChatSettings()
    api: ApiSettings = ApiSettings()
    reporting: ReportingSettings = ReportingSettings()
    grafana_db_password: SecretStr | None = Field(None, description="the password `quorum db upgrade` gives the "
                                                  "Grafana role (quorum_grafana); unset: the role cannot log in")
    langsmith_tracing: bool = Field(False, validation_alias=_langsmith("TRACING"))
    langsmith_endpoint: str | None = Field(None, validation_alias=_langsmith("ENDPOINT"))
    langsmith_api_key: SecretStr | None = Field(None, validation_alias=_langsmith("API_KEY"))
    langsmith_project: str = Field("quorum", validation_alias=_langsmith("PROJECT"))

    @model_validator(mode="after")
    def _absolute_data_paths(self) -> Settings:
        """data_dir, the embedded database and the backups as absolute paths (a later chdir moves none of them);
        the database and the backups default to <data_dir>/pgdata and <data_dir>/backups."""
        self.data_dir = self.data_dir.expanduser().resolve()
        pgdata = self.database.embedded_dir if "embedded_dir" in self.database.model_fields_set else None
        backups = self.schedule.backup_dir if "backup_dir" in self.schedule.model_fields_set else None
        self.database = self.database.model_copy(
            update={"embedded_dir": (pgdata or self.data_dir / "pgdata").expanduser().resolve()})
        self.schedule = self.schedule.model_copy(
            update={"backup_dir": (backups or self.data_dir / "backups").expanduser().resolve()})
        return self

    @property
    def tracing(self) -> TracingSettings:
        """LangSmith tracing, from the LANGSMITH_* variables."""
        return TracingSettings(enabled=self.langsmith_tracing, endpoint=self.langsmith_endpoint,
                               api_key=self.langsmith_api_key, project=self.langsmith_project)

    @property
    def effective_database_url(self) -> str | None:
        """DATABASE_URL, or QUORUM_DATABASE__URL, or None for the embedded server."""
        url = self.database_url or self.database.url
        return url.get_secret_value() if url else None

    def check_live_trading(self) -> None:
        """Refuse live (non-paper) Alpaca trading without the explicit acknowledgement, or without a go-live record
        for these keys (`quorum golive`, docs/go-live.md)."""
        if self.broker.provider != "alpaca" or self.broker.paper:
            return
        if self.live_trading != LIVE_TRADING_ACK:
            raise ConfigurationError(
                f"QUORUM_BROKER__PAPER=false asks for live trading with real money; "
                f"set QUORUM_LIVE_TRADING={LIVE_TRADING_ACK} as well to allow it"
            )
        from entrypoints.golive_record import check_live

        refusal = check_live(self)
        if refusal is not None:
            raise ConfigurationError(f"live trading refused: {refusal}; run `quorum golive` with the live keys "
                                     "(docs/go-live.md)")


def _setting_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    if parts == ["database_url"]:
        return "DATABASE_URL"
    if parts and parts[0].upper().startswith("LANGSMITH_"):
        return parts[0].upper()
    return "QUORUM_" + "__".join(p.upper() for p in parts)


def load_settings(**overrides: object) -> Settings:
    """Load settings, turning validation errors into one readable `ConfigurationError`.

    Raises:
        ConfigurationError: a value is invalid; the message names each bad setting.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"{_setting_name(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigurationError("invalid settings:\n  " + "\n  ".join(lines)) from None
