"""Benchmarks: `make bench` (python -m bench [NAME ...]) runs every bench/*.py module defining `run() -> dict`.

Each benchmark measures its figure and its baseline in the same run and writes
bench/results/<name>.json (see bench/common.py). Not part of `make test`.
"""
