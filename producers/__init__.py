"""Producers: replay real historical data and generate seeded synthetic streams, into Kafka.

* :mod:`producers.sources` - real data: arch's daily indices, S&P 500 one-minute bars, the
  fraud-handbook transactions (chunked), price CSVs in the offline CLI's format;
* :mod:`producers.synthetic` - seeded GARCH-t prices with jumps and a market factor, and
  synthetic card transactions;
* :mod:`producers.messages` - events as Kafka messages (key, value bytes), JSON Lines I/O;
* :mod:`producers.faults` - bad-record injection, labelled with the expected dead-letter reason;
* :mod:`producers.run` - pacing (rate or speed), progress bar, report, the JSON Lines sink;
* :mod:`producers.kafka` - the kafka-python publisher that accounts for every delivery.

The command line is ``riskstream produce`` (:mod:`engine.cli.produce`).
"""
