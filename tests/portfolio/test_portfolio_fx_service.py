"""A multi-currency, multi-calendar book streamed through Kafka equals the offline command.

Real Kafka (prices in 3 partitions, positions in 1, a compacted ``instruments`` topic) and
real Redis; the service reads small polls, is stopped half-way and resumed from Redis.
Every allocation must equal, bit for bit, the offline book's for the same close, and the
offline command (``riskstream portfolio var --instruments``) writes those same numbers.

Two books on real data (:mod:`fx_data`):

- ``fx``, base currency GBP, 1980-82: the DJIA (USD), DM and yen held through the
  DEMUSD and JPYUSD pairs (crossed into pounds through GBPUSD), pounds held as GBPUSD
  (no risk in a pound book), a call on the DJIA (valued by the Greeks monitor, kept out
  of the linear book) and a portfolio holding Canadian dollars with no CAD pair in the
  reference data (the missing-rate state, in the Redis hash).
- ``crypto``, base USD, 2020-21: BTC-USD (24/7) and NVIDIA (NYSE sessions); the grid
  closes on sessions only, weekend moves of BTC accumulate into Monday.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
import redis
from typer.testing import CliRunner

from engine.cli import app
from engine.config import Settings
from engine.core.portfolio import Allocation, PortfolioBook
from engine.faults.harness import produce
from engine.options.greeks import UnderlyingMarket
from engine.options.live import GreeksMonitor
from engine.options.reference import read_instrument_file
from engine.portfolio.positions import START_MS, Position, apply_listings
from engine.portfolio.service import GREEKS_PREFIX, HASH_PREFIX, PortfolioService
from engine.services.kafka_admin import create_topic

from ..helpers.streams import price_messages, run_service_until
from .fx_data import btc_nvda, djia, garch_fx, long_frame

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DAY = 86_400_000
LEVELS = (0.95, 0.99)
runner = CliRunner()

FX_INSTRUMENTS = """instrument,kind,currency,calendar,underlying,strike,expiry,right,style,multiplier
DJIA,index,USD,XNYS,,,,,,
DEMUSD,fx,USD,24/5,,,,,,
GBPUSD,fx,USD,24/5,,,,,,
JPYUSD,fx,USD,24/5,,,,,,
CADUSD,fx,CAD,24/5,,,,,,
DJIA-C900,option,USD,XNYS,DJIA,900,1981-12-18,call,european,10
"""
CRYPTO_INSTRUMENTS = """instrument,kind,currency,calendar
BTCUSD,crypto,USD,24/7
NVDA,equity,USD,XNYS
"""


def fx_case() -> tuple[pd.DataFrame, list[Position], str, str]:
    wide = garch_fx()[["DEMUSD", "GBPUSD", "JPYUSD", "CADUSD"]]
    wide = wide.join(djia().rename("DJIA"), how="left")
    wide = wide[(wide.index >= "1980-01-01") & (wide.index < "1982-07-01")]
    frame = long_frame(wide)
    start = int(frame["timestamp"].iloc[0].value // 1_000_000)
    positions = [
        Position("fx", "DJIA", 10.0, start),
        Position("fx", "DEMUSD", 20_000.0, start),
        Position("fx", "JPYUSD", 2_000_000.0, start + 90 * DAY),
        Position("fx", "GBPUSD", 5_000.0, start),
        Position("fx", "DJIA-C900", 4.0, start),
        Position("cad", "CADUSD", 1_000.0, start),  # CADUSD priced in "CAD": no route to GBP
    ]
    return frame, positions, "GBP", FX_INSTRUMENTS


def crypto_case() -> tuple[pd.DataFrame, list[Position], str, str]:
    frame = btc_nvda()
    frame = frame[frame["timestamp"] < pd.Timestamp("2021-01-01", tz="UTC")].reset_index(drop=True)
    positions = [Position("crypto", "BTCUSD", 2.0), Position("crypto", "NVDA", 500.0)]
    return frame, positions, "USD", CRYPTO_INSTRUMENTS


def _key(a: Allocation) -> tuple:
    return (a.ts_ms, a.portfolio, a.level)


def _numbers(a: Allocation) -> str:
    return repr(
        (a.value, a.var, a.es, a.symbols, a.component.tolist(), a.marginal.tolist(),
         a.currency, a.missing_fx)
    )  # fmt: skip


@pytest.mark.parametrize("case", [fx_case, crypto_case], ids=["fx-gbp", "crypto-usd"])
def test_mixed_currency_book_streams_as_offline(case, fresh_kafka, redis_url, tmp_path: Path):
    frame, positions, base, instruments_csv = case()
    ms = frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
    instruments = tmp_path / "instruments.csv"
    instruments.write_text(instruments_csv)
    listings = read_instrument_file(instruments)
    options = {x.key for x in listings if x.instrument is not None and x.instrument.is_option}

    # offline, the book itself: the same ticks, no flush (a stream cannot close the end)
    book = PortfolioBook(interval_ms=DAY, levels=LEVELS, min_obs=20, base_currency=base)
    apply_listings(book, listings)
    for p in positions:
        if p.symbol not in options:
            book.set_position(p.portfolio, p.symbol, p.quantity, p.ts)
    expected = book.on_ticks(frame["symbol"].astype(str), ms, frame["price"].to_numpy(float))
    last_closes = sorted({a.ts_ms for a in expected})
    expected = [a for a in expected if a.ts_ms <= last_closes[-2]]
    assert len(expected) > 400

    broker = fresh_kafka()
    create_topic(broker.bootstrap, "prices", partitions=3)
    create_topic(broker.bootstrap, "positions", partitions=1)
    create_topic(broker.bootstrap, "instruments", config={"cleanup.policy": "compact"})
    produce(
        broker.bootstrap,
        "instruments",
        [
            (x.key.encode(), orjson.dumps(_record(x.key, row)))
            for x, row in zip(
                listings, pd.read_csv(instruments, dtype=str).to_dict("records"), strict=True
            )
        ],
    )
    produce(broker.bootstrap, "positions", [(p.portfolio.encode(), p.to_json()) for p in positions])
    produce(broker.bootstrap, "prices", price_messages(frame))
    settings = Settings(kafka_bootstrap=broker.bootstrap, base_currency=base)
    client = redis.Redis.from_url(redis_url)
    got: list[Allocation] = []

    def service() -> PortfolioService:
        greeks = None
        if options:
            greeks = GreeksMonitor({"DJIA": UnderlyingMarket(0.12, 0.05, 0.2)}, every_ms=0)
        return PortfolioService(
            settings,
            redis=client,
            book_factory=lambda: PortfolioBook(
                interval_ms=DAY,
                levels=LEVELS,
                min_obs=20,
                base_currency=settings.portfolio.base_currency,
            ),
            max_records=250,
            poll_ms=100,
            stress=None,
            greeks=greeks,
            instruments=True,
        )

    def run(svc: PortfolioService, until) -> None:  # type: ignore[no-untyped-def]
        run_service_until(svc, until, seconds=120, join_seconds=150, on_output=got.extend)
        assert until(), f"the service stopped at {len(got)} of {len(expected)} allocations"

    run(service(), lambda: len(got) >= len(expected) // 3)
    run(service(), lambda: bool(got) and got[-1].ts_ms >= last_closes[-2])

    assert [_key(a) for a in got] == [_key(a) for a in expected], "missing or repeated closes"
    assert [_numbers(a) for a in got] == [_numbers(a) for a in expected]
    assert {a.currency for a in got} == {base}

    # the offline command writes the same numbers (its file end is flushed: one more close)
    out = tmp_path / "var.csv"
    pos_file = tmp_path / "positions.csv"
    pd.DataFrame(
        [(p.portfolio, p.symbol, p.quantity, _iso(p.ts))
         for p in positions if p.symbol not in options],
        columns=["portfolio", "symbol", "quantity", "timestamp"],
    ).to_csv(pos_file, index=False)  # fmt: skip
    prices_file = tmp_path / "prices.csv"
    frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
        prices_file, index=False
    )
    result = runner.invoke(
        app,
        [
            "portfolio", "var", "--prices", str(prices_file), "--positions", str(pos_file),
            "--out", str(out), "--instruments", str(instruments), "--base-currency", base,
            "--levels", "0.95,0.99",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    offline = pd.read_csv(out).iloc[: len(expected)]
    missing = offline["missing_fx"].astype(object)
    assert offline["portfolio"].tolist() == [a.portfolio for a in expected]
    assert [repr(float(v)) for v in offline["var"]] == [repr(a.var) for a in expected]
    assert [repr(float(v)) for v in offline["value"]] == [repr(a.value) for a in expected]
    assert missing.where(missing.notna(), "").tolist() == [";".join(a.missing_fx) for a in expected]
    assert (offline["currency"] == base).all()

    if case is fx_case:
        fx = [a for a in got if a.portfolio == "fx"]
        last = fx[-1]
        assert set(last.symbols) == {"DJIA", "DEMUSD", "GBPUSD", "JPYUSD"}  # no option
        # pounds in a pound book: GBPUSD's factor exposure is what the dollar assets add
        stored = {k.decode(): v.decode() for k, v in client.hgetall(HASH_PREFIX + "fx").items()}
        assert stored["currency"] == "GBP" and stored["fx_missing"] == ""
        assert float(stored["var_99"]) == [a for a in fx if a.level == 0.99][-1].var > 0
        cad = {k.decode(): v.decode() for k, v in client.hgetall(HASH_PREFIX + "cad").items()}
        assert cad["fx_missing"] == "CAD" and cad["var_99"] == "nan"
        assert client.exists(GREEKS_PREFIX + "fx")
    else:
        closes = pd.to_datetime(sorted({a.ts_ms for a in got}), unit="ms", utc=True)
        assert closes.day_of_week.max() <= 4, "a weekend became a grid point"


def _iso(ts_ms: int) -> str:
    """A position file's timestamp: empty for a position held from the start."""
    return "" if ts_ms == START_MS else pd.Timestamp(ts_ms, unit="ms", tz="UTC").isoformat()


def _record(name: str, row: dict[str, object]) -> dict[str, object]:
    """The CSV row as an ``instruments`` message (empty cells left out, numbers as numbers)."""
    out: dict[str, object] = {}
    for field, value in row.items():
        if not isinstance(value, str) or not value:
            continue
        out[field] = float(value) if field in ("strike", "multiplier") else value
    assert out["instrument"] == name
    return out
