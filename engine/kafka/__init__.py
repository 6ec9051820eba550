"""Kafka as riskstream uses it: client settings for each client library, and the topics.

- :mod:`~engine.kafka.clients`: client settings derived from :class:`~engine.config.Settings`;
- :mod:`~engine.kafka.topics`: the topics riskstream reads and writes, and creating them.
"""
