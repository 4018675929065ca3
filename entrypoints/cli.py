"""`quorum`: the command-line entry point."""

from __future__ import annotations

import typer

from entrypoints.cli_errors import FriendlyErrors, set_debug
from entrypoints.commands import (
    backtest,
    breaker,
    chat,
    data,
    db,
    discover,
    evals,
    flatten,
    golive,
    market,
    memory,
    monitor,
    paper,
    preflight,
    rehearse,
    serve,
    trading,
    worker,
)

app = typer.Typer(help="Quorum: an LLM-driven trading agent held inside hard risk limits.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False, cls=FriendlyErrors)


@app.callback()
def main(debug: bool = typer.Option(False, "--debug", help="print the traceback of an error (and tracebacks in "
                                    "log lines) instead of one line naming it")) -> None:
    """Quorum: an LLM-driven trading agent held inside hard risk limits."""
    set_debug(debug)


app.add_typer(db.app, name="db")
app.add_typer(data.app, name="data")
app.add_typer(memory.app, name="memory")
app.command("backtest")(backtest.backtest)
app.add_typer(breaker.app, name="breaker")
app.command("monitor")(monitor.monitor)
app.command("preflight")(preflight.preflight)
app.command("golive")(golive.golive)
app.command("market-closed")(market.market_closed)
app.command("serve")(serve.serve)
app.command("chat")(chat.chat)
app.command("worker")(worker.worker)
app.command("discover")(discover.discover)
app.add_typer(discover.watchlist_app, name="watchlist")
app.add_typer(trading.app, name="trading")
app.command("flatten")(flatten.flatten_command)
app.command("rehearse")(rehearse.rehearse)
app.add_typer(paper.app, name="paper")
app.add_typer(evals.evals_app, name="evals")

if __name__ == "__main__":
    app()
