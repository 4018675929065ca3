"""Evals: building the datasets from the market data port (`build.build_datasets`)."""
