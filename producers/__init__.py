"""Producers: replay real historical data and generate seeded synthetic streams, into Kafka."""
