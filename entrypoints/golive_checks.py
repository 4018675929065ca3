"""The gates of `quorum golive`, built from settings and the container: the plan's final checks before real money.

Each gate is a `preflight` check (one pass/fail line with a fix). The self-tests run on simulations
(`application.golive_selftests`, `entrypoints.golive_selftests`); the others look at the configured system: its
database (evals, the paper campaign, a backup restored into a scratch database), its alert channels (a test alert
to each) and the live account (read only: `account()`, never an order).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.alerts.log import LogAlertChannel
from adapters.postgres import migrate
from application.chat.contracts import NullStepSink
from application.golive import account_gate, campaign_gate, evals_gate
from application.golive_selftests import breaker_selftest, hard_limits_selftest
from application.paper.campaign import CampaignNotFoundError
from application.paper.campaign import campaign_status as measure_campaign
from application.preflight import Check, CheckResult, failed, passed
from domain.alerts import Alert
from domain.errors import BrokerAuthError, BrokerError, ConfigurationError
from domain.events import Severity
from domain.models.account import Account
from domain.paper import CampaignStatus
from domain.ports.clock import Clock
from entrypoints.chat.wiring import ChatRuntime, build_chat
from entrypoints.container import Container, build_container
from entrypoints.golive_backup import backup_and_restore
from entrypoints.golive_selftests import llm_selftest, pipeline_selftest, rollback_selftest
from entrypoints.preflight_checks import in_daemon_thread
from entrypoints.settings import LIVE_TRADING_ACK, Settings, load_settings
from entrypoints.wiring.alerts import build_channels
from entrypoints.wiring.venue import alpaca_probe

CampaignStatusFn = Callable[..., Awaitable[CampaignStatus]]
LIVE_KEYS = ("put the live account's keys in QUORUM_BROKER__ALPACA_API_KEY / QUORUM_BROKER__ALPACA_SECRET_KEY and "
             "set QUORUM_BROKER__PROVIDER=alpaca QUORUM_BROKER__PAPER=false for this command (golive only reads the "
             "account)")
OUT_OF_RANGE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("QUORUM_RISK__MAX_POSITION_PCT=1.5", {"risk": {"max_position_pct": 1.5}}),
    ("QUORUM_RISK__MAX_DAILY_LOSS_PCT=1", {"risk": {"max_daily_loss_pct": 1.0}}),
    ("QUORUM_RISK__BREAKER__MAX_DRAWDOWN_PCT=1", {"risk": {"breaker": {"max_drawdown_pct": 1.0}}}),
    ("QUORUM_RISK__MIN_STOP_PCT above the default stop", {"risk": {"min_stop_pct": 0.2, "default_stop_pct": 0.05}}),
    ("QUORUM_LLM__DAILY_CAP_USD=-1", {"llm": {"daily_cap_usd": -1}}),
)
SAFE_CEILINGS: tuple[tuple[str, str, float], ...] = (
    ("max_position_pct", "QUORUM_RISK__MAX_POSITION_PCT", 0.5),
    ("max_daily_loss_pct", "QUORUM_RISK__MAX_DAILY_LOSS_PCT", 0.10),
    ("max_stop_pct", "QUORUM_RISK__MAX_STOP_PCT", 0.25),
)


def reading_settings(settings: Settings) -> Settings:
    """The settings golive's own container reads with: live keys are allowed for reading the account (golive never
    runs a cycle or sends an order); everything else as configured."""
    if settings.broker.provider == "alpaca" and not settings.broker.paper:
        return settings.model_copy(update={"live_trading": LIVE_TRADING_ACK})
    return settings


def system_container(settings: Settings) -> Container:
    """The container of the configured system (database, alerts, broker) for the gates that look at it."""
    return build_container(reading_settings(settings), "live" if settings.broker.provider == "alpaca" else "sim")


class GoLiveChecks:
    """The gates for one configuration; `checks()` lists them in their fixed order.

    Args:
        settings: the loaded settings (as they will be for live trading).
        container: the configured system (`system_container`).
        clock: the wall clock.
        open_chat: opens the chat runtime the chat gate asks (default: `build_chat` on a container of its own).
        campaign_status: `application.paper.campaign.campaign_status` (injectable for tests).
    """

    def __init__(self, settings: Settings, container: Container, *, clock: Clock | None = None,
                 open_chat: Callable[[], Awaitable[ChatRuntime]] | None = None,
                 campaign_status: CampaignStatusFn | None = None) -> None:
        self._settings = settings
        self._container = container
        self.clock = clock or container.system_clock()
        self._open_chat = open_chat or (lambda: build_chat(system_container(settings)))
        self._campaign_status = campaign_status or measure_campaign
        self.account: Account | None = None
        self._db_problem: CheckResult | bool | None = False
        """The live account as the live_account gate read it (None until it did)."""

    def checks(self) -> list[tuple[str, Check]]:
        """(name, check) pairs, in the order they run."""
        return [("safety_rules", self.safety_rules), ("breaker", self.breaker), ("rollback", self.rollback),
                ("hard_limits", self.hard_limits), ("llm_retries_and_cap", self.llm), ("pipeline", self.pipeline),
                ("chat", self.chat), ("evals", self.evals), ("paper_campaign", self.paper_campaign),
                ("backups", self.backups), ("alerts", self.alerts), ("live_account", self.live_account)]

    async def _database_problem(self) -> CheckResult | None:
        """A failed result when the configured database is not reachable or not migrated (asked once)."""
        if self._db_problem is False and self._container.storage() == "memory":
            self._db_problem = None
        if self._db_problem is False:
            try:
                url, _ = await in_daemon_thread(self._container.database)
                st = await in_daemon_thread(lambda: migrate.status(url))
                self._db_problem = None if st.at_head else failed(
                    f"the database is at {st.current_revision}, head is {st.head_revision}", "run `quorum db upgrade`")
            except Exception as exc:  # noqa: BLE001 - reported as this gate's failure
                self._db_problem = failed(f"the database is not reachable: {type(exc).__name__}: {exc}",
                                          "run `quorum preflight` and fix the database lines")
        return self._db_problem if isinstance(self._db_problem, CheckResult) else None

    async def safety_rules(self) -> CheckResult:
        """Shorts off, market hours only, the API behind a key, no limit loosened beyond a small account's."""
        s, r = self._settings, self._settings.risk
        problems, hints = [], []
        if r.allow_short:
            problems.append("short selling is on")
            hints.append("set QUORUM_RISK__ALLOW_SHORT=false")
        if not r.market_hours_only:
            problems.append("orders outside market hours are allowed")
            hints.append("set QUORUM_RISK__MARKET_HOURS_ONLY=true")
        for field, name, ceiling in SAFE_CEILINGS:
            if float(getattr(r, field)) > ceiling:
                problems.append(f"{name}={getattr(r, field)} is above {ceiling}")
                hints.append(f"set {name} to at most {ceiling}")
        if r.breaker.max_drawdown_pct > 0.25:
            problems.append(f"the breaker trips only at a {r.breaker.max_drawdown_pct:.0%} drawdown")
            hints.append("set QUORUM_RISK__BREAKER__MAX_DRAWDOWN_PCT to at most 0.25")
        if s.api_key is None:
            problems.append("the API has no key: its control endpoints (pause, flatten) are not protected")
            hints.append("set QUORUM_API_KEY to a long random string")
        if problems:
            return failed("; ".join(problems), "; ".join(hints))
        return passed(f"shorts off, market hours only, position <= {r.max_position_pct:.0%}, daily loss stop "
                      f"{r.max_daily_loss_pct:.0%}, breaker at {r.breaker.max_drawdown_pct:.0%} drawdown, API key set")

    async def breaker(self) -> CheckResult:
        """The circuit breaker trips and holds on the configured thresholds."""
        return breaker_selftest(self._settings.risk.breaker, equity=self._settings.risk.starting_capital,
                                as_of=self.clock.now())

    async def rollback(self) -> CheckResult:
        """A cycle hit by a database error rolls back whole."""
        return await rollback_selftest(self._settings)

    async def hard_limits(self) -> CheckResult:
        """No proposal widens a hard limit, and settings out of range are refused at start-up."""
        result = hard_limits_selftest(self._settings.risk, as_of=self.clock.now(), tz=self._container.calendar().tz)
        accepted = []
        for name, override in OUT_OF_RANGE:
            try:
                load_settings(**override)
                accepted.append(name)
            except ConfigurationError:
                pass
        if accepted:
            return failed(f"settings out of range were accepted: {', '.join(accepted)}",
                          "restore the bounds in domain/risk/config.py and entrypoints/settings.py")
        if not result.ok:
            return result
        return passed(f"{result.detail}; {len(OUT_OF_RANGE)} out-of-range settings refused at start-up")

    async def llm(self) -> CheckResult:
        """The LLM adapter retries and the daily spend cap holds under concurrent calls."""
        return await llm_selftest(self._settings, as_of=self.clock.now(), tz=self._container.calendar().tz)

    async def pipeline(self) -> CheckResult:
        """The live stack runs end to end against the Alpaca-wire emulator with broker faults injected."""
        return await pipeline_selftest(self._settings, run_id="golive-" + self.clock.now().strftime("%Y%m%d%H%M%S"))

    async def chat(self) -> CheckResult:
        """The chat, wired as `quorum chat` wires it, answers "show me the portfolio" with the portfolio tool."""
        if (problem := await self._database_problem()) is not None:
            return problem
        try:
            runtime = await self._open_chat()
        except (ConfigurationError, OSError) as exc:
            return failed(f"the chat cannot start: {exc}", "run `quorum chat` and fix what it reports")
        try:
            answer = await runtime.assistant.answer([], "show me the portfolio", who="golive",
                                                    as_of=self.clock.now(), steps=NullStepSink())
        finally:
            await runtime.close()
        tools = [r for r in answer.results if r.name == "portfolio"]
        if not tools or not tools[0].ok:
            why = tools[0].text if tools else f"no portfolio tool call ({[r.name for r in answer.results]})"
            return failed(f"the chat did not answer with the portfolio: {why}",
                          "run `quorum chat`, ask 'show me the portfolio' and fix what it reports")
        return passed(f"answered by {answer.model}: {tools[0].text[:120]}")

    async def evals(self) -> CheckResult:
        """The latest eval run is recent and passed the regression gate."""
        if (problem := await self._database_problem()) is not None:
            return problem
        async with self._container.uow_factory()() as uow:
            runs = await uow.eval_runs.list(self._container.scope(), limit=20, documents=False)
        latest = next((r for r in runs if r.kind != "baseline"), None)
        return evals_gate(latest, now=self.clock.now())

    async def paper_campaign(self) -> CheckResult:
        """A paper campaign of at least 10 sessions met every success criterion."""
        if (problem := await self._database_problem()) is not None:
            return problem
        c = self._container
        try:
            status = await self._campaign_status(c.uow_factory(), c.calendar(), c.scope(), as_of=self.clock.now())
        except CampaignNotFoundError:
            return campaign_gate(None)
        return campaign_gate(status)

    async def backups(self) -> CheckResult:
        """A backup of the configured database taken now restores into a scratch database."""
        if (problem := await self._database_problem()) is not None:
            return problem
        s = self._settings
        url, description = self._container.database()
        try:
            dump, counts = await backup_and_restore(url, s.schedule.backup_dir, keep_days=s.schedule.backup_keep_days,
                                                    now=self.clock.now())
        except Exception as exc:  # noqa: BLE001 - every failure of the dump or the restore is this gate's
            return failed(f"backup or restore failed: {type(exc).__name__}: {exc}",
                          f"check that {s.schedule.backup_dir} is writable and the database user may CREATE "
                          "DATABASE; then `quorum db backup`")
        return passed(f"{dump.name} ({dump.stat().st_size // 1024} KiB) of {description} restored into a scratch "
                      f"database: {counts['events']} events, {counts['orders']} orders")

    async def alerts(self) -> CheckResult:
        """A test alert reaches every configured channel (the log alone does not count)."""
        try:
            channels = build_channels(self._settings.alerts)
        except ConfigurationError as exc:
            return failed(str(exc), "fix the QUORUM_ALERTS__* settings")
        real = {n: ch for n, ch in channels.items() if not isinstance(ch, LogAlertChannel)}
        if not real:
            return failed("no alert channel configured: alerts only go to the log, nobody would hear of a trip",
                          "set QUORUM_ALERTS__DISCORD_WEBHOOK_URL and/or QUORUM_ALERTS__SES_SENDER with "
                          "QUORUM_ALERTS__SES_RECIPIENTS")
        now = self.clock.now()
        alert = Alert("golive_check", Severity.CRITICAL, "Quorum go-live check: test alert",
                      "This is a test from `quorum golive`: if you can read it, this channel works.", now,
                      dedupe_key=f"golive:{now.isoformat()}")
        undelivered = []
        for name, channel in real.items():
            try:
                await channel.send(alert)
            except Exception as exc:  # noqa: BLE001 - any failure means the channel does not work
                undelivered.append(f"{name}: {type(exc).__name__}: {exc}")
        if undelivered:
            return failed(f"not delivered to {'; '.join(undelivered)}",
                          "fix the channel's setting (webhook URL, SES sender, recipients, AWS credentials)")
        return passed(f"a test alert was delivered to {', '.join(real)}; check that it arrived")

    async def live_account(self) -> CheckResult:
        """The live Alpaca account answers and fits the starting capital and the per-order caps."""
        s, b = self._settings, self._settings.broker
        if b.provider != "alpaca":
            return failed("the simulated broker is configured, not a live account", LIVE_KEYS)
        if b.paper:
            return failed("QUORUM_BROKER__PAPER=true: these are the paper account's settings", LIVE_KEYS)
        if b.alpaca_api_key is None or b.alpaca_secret_key is None:
            return failed("the Alpaca keys are not set", LIVE_KEYS)
        if b.alpaca_api_key.get_secret_value().startswith("PK"):
            return failed("the API key is a paper key (PK...)", LIVE_KEYS)
        try:
            async with alpaca_probe(reading_settings(s)) as alpaca:
                account = await alpaca.account()
        except BrokerAuthError:
            return failed("Alpaca's live API rejected the keys (401)", LIVE_KEYS)
        except (BrokerError, ConfigurationError) as exc:
            return failed(f"{type(exc).__name__}: {exc}", "check that the live API is reachable "
                          "(QUORUM_BROKER__TRADING_URL overrides it)")
        self.account = account
        return account_gate(s.risk, account)

