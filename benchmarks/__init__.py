"""meshwatch benchmarks: speed and memory figures as ratios against same-run baselines.

Run them with ``make bench`` (``python -m benchmarks``); see
:mod:`benchmarks.__main__` for how modules are found and what they return.
"""
