"""Runs without Kafka or Redis: price tables through the risk book, backtests, the embedded runner.

- :mod:`~engine.offline.runs`: a price table through the same risk book the stream uses;
- :mod:`~engine.offline.backtest_report`: the backtest evaluation ``riskstream backtest`` writes;
- :mod:`~engine.offline.embedded`: the worker's pipelines in-process (``riskstream run``);
- :mod:`~engine.offline.embedded_inputs`: a user's own prices and transactions as records.
"""
