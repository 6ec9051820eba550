"""Fault and benchmark tooling: drive real processes, hurt them, check what they wrote.

Nothing in the runtime imports this package (an import-linter contract in pyproject.toml).

- :mod:`~engine.faults.harness`: start real riskstream processes and read their outputs;
- :mod:`~engine.faults.chaos`: seeded fault runs over a group of workers;
- :mod:`~engine.faults.checker`: what the stream should have produced, and what it did.
"""
