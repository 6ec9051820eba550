"""Portfolios: positions and price files offline, and the streaming portfolio service.

- :mod:`~engine.portfolio.positions`: positions at the boundary, price files through
  :class:`~engine.core.portfolio.PortfolioBook`, the offline tables and backtest;
- :mod:`~engine.portfolio.service`: ``prices`` and ``positions`` from Kafka, risk to Redis;
- :mod:`~engine.portfolio.group`: the service scaled out as a consumer group.
"""
