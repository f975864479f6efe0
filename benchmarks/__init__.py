"""Benchmarks: scale tiers and the harness. Measurements, not pass/fail tests.

Run them with `python -m benchmarks.run [names…]`; `benchmarks/run.py` lists what is registered.
Scratch data goes under `$LUPA_BENCH_DIR` (default: a folder in the system temp dir), never in git.
"""
