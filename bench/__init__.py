"""Load tests of the three sites against bare baselines: ``python -m bench`` (``--smoke`` for CI).

The harness (this package, run from the repo root) starts Redis, the sites' daphne
processes and the baseline servers pinned to one core, and drives load client
processes (``bench.client``) pinned to the other. See ``python -m bench --help``.
"""
