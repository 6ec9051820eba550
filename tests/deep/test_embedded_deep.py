"""The deep models in the embedded stream: messages with ``rv`` in, the same forecasts as one batch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from engine.boundary.records import RawRecord
from engine.boundary.timeutil import format_ts
from engine.config import Settings
from engine.offline.embedded import EmbeddedRunner
from engine.pipeline import PricePipeline
from producers.sources import sp500_realized


def records() -> list[RawRecord]:
    frame = sp500_realized()
    frame = frame[(frame["timestamp"] >= "2007-01-01") & (frame["timestamp"] < "2009-01-01")]
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype("int64").tolist()
    out = []
    for i, (ts, price, rv) in enumerate(zip(ms, frame["price"], frame["rv"], strict=True)):
        doc = {"symbol": "SPX", "ts": format_ts(ts), "price": float(price)}
        if rv == rv:  # not NaN
            doc["rv"] = float(rv)
        out.append(RawRecord(b"SPX", orjson.dumps(doc), 0, i))
    return out


def test_embedded_stream_serves_lstm_var_and_drift_like_one_batch(tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, out = tiny
    settings = Settings(
        vol_models=("ewma", "lstm", "transformer"),
        var_method="transformer-fhs",
        deep_model_dir=out,
        var_window=100,
        var_min_obs=50,
        alert_levels=(0.99,),
        drift_models=("lstm",),
        drift_threshold=10.0,
    )
    data = records()
    report = asyncio.run(EmbeddedRunner(settings, tmp_path, batch_size=37).run(data))
    reference = PricePipeline.from_settings(settings).process(data, now_ms=2_000_000_000_000)
    assert report.accepted == reference.accepted == len(data)
    alerts = [orjson.loads(line) for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    for kind in ("var_breach", "drift"):  # each kind in tick order (stage alerts follow per batch)
        got = [a["alert_id"] for a in alerts if a["kind"] == kind]
        assert got == [a.alert_id for a in reference.alerts if a.kind == kind]
        assert got, kind
    final = {s.symbol: s for s in reference.snapshots}
    assert report.symbols["SPX"].sigma == final["SPX"].sigma
    assert report.symbols["SPX"].var == final["SPX"].var
