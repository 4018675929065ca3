"""Evals, pure: triple-barrier labels, the reference barriers, dataset row schemas, metrics and statistics.

- `barriers`: `triple_barrier`, `Barriers`, `ForwardPath`, `BarrierLabel`.
- `reference`: the agent's own stop, take-profit, size and confidence that label the datasets.
- `rows`: the JSONL row schemas (`SignalRow`, `TrapRow`, `RiskRow`, `ValidatorRow`, `Outcome`).
- `bootstrap`: `Estimate`, `bootstrap_ci`, `stationary_indices`, `paired_bootstrap`, `PairedComparison`.
- `sharpe`: `sharpe_ratio`, `sharpe_interval`, PSR, MinTRL, DSR, `can_rank`.
- `signal_metrics`, `risk_metrics`, `validator_metrics`: the agents' metrics with bootstrap intervals.
"""
