"""`riskstream bench credit` on a small input: the result's structure and its invariants."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest

from engine.bench.credit import CreditBenchResult, run

pytestmark = pytest.mark.integration


def test_bench_credit_small(redis_url: str, tmp_path: Path) -> None:
    result = run(
        passes=1,
        batch=10_000,
        customers=20,
        repeats=3,
        workdir=tmp_path,
        redis_url=redis_url,
        progress=lambda _: None,
    )
    assert isinstance(result, CreditBenchResult)
    assert result.events == 20_000  # 30,000 reviews less the warm-up batch
    assert 0 < result.onnx_us <= result.stage_us <= result.pipeline_us
    assert result.pipeline_wall_us > 0
    # Each customer's first alert is computed, its recurrences are cache hits.
    assert result.requests == 60
    assert result.hit_ratio == pytest.approx(2 / 3)
    for name in ("uncached", "cached", "shap_only", "uncached_cpu", "cached_cpu"):
        p50 = getattr(result, f"{name}_p50_ms")
        p99 = getattr(result, f"{name}_p99_ms")
        assert 0 < p50 <= p99
    assert result.worker_reviews == 0 and math.isnan(result.worker_rate)
    assert len(result.load) == 2

    table = result.markdown()
    assert "SHAP cache hit ratio of the replay | 66.7%" in table
    assert "worker" not in table  # no worker run asked for
    doc = orjson.loads(orjson.dumps(result.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY))
    assert doc["requests"] == 60 and doc["events"] == 20_000


def test_bench_credit_refuses_what_it_cannot_measure(redis_url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to time"):
        run(passes=1, batch=30_000, workdir=tmp_path, redis_url=redis_url, progress=print)
    with pytest.raises(ValueError, match="starts its own Redis"):
        run(passes=1, worker_reviews=10, workdir=tmp_path, redis_url=redis_url, progress=print)
