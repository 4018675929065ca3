"""The label of a scenario: a long entry at the next session's open with the agent's own barriers."""

from __future__ import annotations

from domain.evals.barriers import Barriers, excursions, triple_barrier
from domain.evals.rows import ForwardBars, Outcome

RETURN_DECIMALS = 6


def label(forward: ForwardBars, barriers: Barriers) -> Outcome:
    """Label the stored (scaled, rounded) forward bars, so that labelling a row again from its own `forward`
    with the same barriers gives the same outcome."""
    path = forward.path()
    done = triple_barrier(path, barriers)
    mae, mfe = excursions(path, barriers.max_sessions)
    ret = round(done.realised_return, RETURN_DECIMALS)
    return Outcome(label=done.label, barrier=done.barrier, realised_return=ret,
                   win=ret > 0, exit_session=done.exit_session, stop_pct=barriers.stop_pct,
                   take_profit_pct=barriers.take_profit_pct, max_sessions=barriers.max_sessions,
                   max_adverse_excursion=round(mae, RETURN_DECIMALS),
                   max_favourable_excursion=round(mfe, RETURN_DECIMALS), forward=forward)


def outcome_word(realised_return: float) -> str:
    """WIN, LOSS or FLAT, as the trade memory labels a closed trade."""
    return "WIN" if realised_return > 0 else ("LOSS" if realised_return < 0 else "FLAT")
