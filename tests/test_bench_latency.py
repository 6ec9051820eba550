"""The latency benchmark's own measuring: every paced tick is matched and timed once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.bench.e2e import measure_raw_latency
from engine.config import Settings
from engine.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_the_raw_consumer_floor_times_every_paced_tick(
    fresh_kafka: Callable[..., Any], tmp_path: Path
) -> None:
    broker = fresh_kafka()
    ensure_topics(Settings(kafka_bootstrap=broker.bootstrap, partitions=4))
    run = measure_raw_latency(
        broker.bootstrap, partitions=4, rate=200, seconds=3, warmup_s=1, symbols=7, workdir=tmp_path
    )
    assert run.steady.size + run.warming.size == 800
    assert 550 <= run.steady.size <= 650  # sent after the first second
    values = np.concatenate([run.steady, run.warming])
    assert np.isfinite(values).all()
    assert (values > 0).all()  # never seen before it was sent
    assert run.percentile_ms(99) < 1000
