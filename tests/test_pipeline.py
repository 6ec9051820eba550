"""The shared pipeline: what every adapter writes for one micro-batch."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.boundary.records import RawRecord, Reason
from engine.boundary.schemas import PriceTick, Transaction
from engine.config import Settings
from engine.pipeline import PricePipeline, TransactionPipeline

NOW = 1_700_000_000_000


def ticks(
    prices: list[float], symbol: str = "SPX", start: int = 1_600_000_000_000
) -> list[RawRecord]:
    return [PriceTick(symbol, start + i * 60_000, p).to_record(i) for i, p in enumerate(prices)]


def calm_then_crash(n: int = 60) -> list[float]:
    """Returns alternating +-0.1% (|r| = sigma < VaR: no breach possible), then a 10% fall."""
    path = list(100 * np.exp(np.cumsum(np.where(np.arange(n) % 2, 0.001, -0.001))))
    return [*path, path[-1] * 0.9]


def pipeline(**settings: object) -> PricePipeline:
    """RiskMetrics only: these tests are about the pipeline, not the models."""
    return PricePipeline.from_settings(
        Settings(
            **{
                "warmup": 5,
                "vol_models": ("ewma",),
                "var_method": "ewma-normal",
                "anomaly_enabled": False,
                **settings,
            }
        )
    )


def test_a_crash_raises_one_critical_var_breach_alert() -> None:
    out = pipeline().process(ticks(calm_then_crash()), now_ms=NOW)
    assert len(out.alerts) == 1
    alert = out.alerts[0]
    assert (alert.kind, alert.subject, alert.severity, alert.model) == (
        "var_breach",
        "SPX",
        "critical",
        "ewma-normal",
    )
    assert alert.value == pytest.approx(-np.log(0.9))
    assert 0 < alert.threshold < alert.value
    assert alert.details["level"] == 0.99


def test_alert_ids_are_deterministic_across_runs_and_batchings() -> None:
    records = ticks(calm_then_crash())
    whole = pipeline().process(records, now_ms=NOW).alerts
    split = pipeline()
    parts = [
        split.process(records[i : i + 7], now_ms=NOW).alerts for i in range(0, len(records), 7)
    ]
    assert [a.alert_id for a in whole] == [a.alert_id for part in parts for a in part]


def test_snapshot_is_the_last_accepted_tick_per_symbol() -> None:
    records = [
        *ticks([100.0, 101.0, 102.0], "A"),
        PriceTick("B", 1_600_000_000_000, 50.0).to_record(10),
        PriceTick("A", 1_500_000_000_000, 99.0).to_record(11),  # late: not the snapshot
    ]
    out = pipeline().process(records, now_ms=NOW)
    snaps = {s.symbol: s for s in out.snapshots}
    assert snaps["A"].price == 102.0 and snaps["A"].n_ticks == 3
    assert snaps["B"].price == 50.0 and snaps["B"].n_ticks == 1
    assert [d.reason for d in out.dead_letters] == [Reason.LATE]
    fields = snaps["A"].fields()
    assert {"ts", "price", "sigma", "var_95", "var_99", "es_975"} <= fields.keys()


def test_every_record_is_accounted_for() -> None:
    good = ticks([100.0, 101.0, 100.5])
    bad = [
        RawRecord(b"SPX", b"{oops", 0, 20),
        RawRecord(b"SPX", good[1].value, 0, 21),
    ]  # malformed, duplicate
    out = pipeline().process(good + bad, now_ms=NOW)
    assert out.received == 5 and out.accepted == 3
    assert sorted(d.reason for d in out.dead_letters) == sorted(
        [Reason.MALFORMED_JSON, Reason.LATE]
    )


def test_alert_levels_must_be_var_levels() -> None:
    from engine.core import PriceRiskBook, RiskSpec

    with pytest.raises(ValueError, match="not VaR levels"):
        PricePipeline(PriceRiskBook(RiskSpec(var_levels=(0.95,))), alert_levels=(0.99,))


def test_transactions_profile_and_duplicates() -> None:
    txs = [
        Transaction(f"t{i}", 1_600_000_000_000 + i, "c1", amount).to_record(i)
        for i, amount in enumerate([10, 20, 30])
    ]
    again = Transaction("t1", 1_600_000_000_500, "c1", 20).to_record(3)
    out = TransactionPipeline().process([*txs, again], now_ms=NOW)
    assert out.accepted == 3
    assert [d.reason for d in out.dead_letters] == [Reason.DUPLICATE]
    (snap,) = out.snapshots
    assert (snap.count, snap.mean_amount, snap.std_amount) == (3, 20.0, pytest.approx(10.0))


def regime_change(seed: int = 5) -> list[float]:
    """400 calm returns (1%), then 200 at four times the volatility."""
    rng = np.random.default_rng(seed)
    sigma = np.where(np.arange(600) < 400, 0.01, 0.04)
    return list(100 * np.exp(np.cumsum(sigma * rng.standard_normal(600))))


def test_a_rolling_backtest_that_starts_rejecting_raises_an_alert_naming_test_and_p_value() -> None:
    """Historical simulation over 250 calm days is far too low once volatility quadruples."""
    hs = pipeline(var_method="hs", var_window=250, var_min_obs=100, backtest_window=100).process(
        ticks(regime_change()), now_ms=NOW
    )
    backtests = [a for a in hs.alerts if a.kind == "backtest"]
    tests = {(a.details["test"], a.details["level"]) for a in backtests}
    assert {("kupiec", 0.99), ("traffic_light", 0.99), ("kupiec", 0.95)} <= tests
    for alert in backtests:
        assert alert.model == "hs" and alert.threshold == 0.05
        if alert.details["test"] != "traffic_light":
            assert alert.value == alert.details["p_value"] < 0.05
            assert alert.details["violations"] > alert.details["expected"]
    assert hs.snapshots[0].fields()["zone_99"] == "red"  # the latest-state hash shows the light
    red = [a for a in backtests if a.details["zone"] == "red"]
    assert red and all(a.severity == "critical" for a in red)
    change = 1_600_000_000_000 + 400 * 60_000
    # While the model is right only the noisy 99% tests of a 100-return window may fire;
    # the red zone and the 95% tests wait for the regime change.
    assert all(a.ts > change for a in backtests if a.details["level"] == 0.95 or a in red)
    # Once per window: a test flickering at its critical value does not alert every flip.
    kupiec99 = sorted(
        a.ts for a in backtests if a.details["test"] == "kupiec" and a.details["level"] == 0.99
    )
    assert all(b - a >= 100 * 60_000 for a, b in itertools.pairwise(kupiec99))


def test_backtest_alerts_do_not_depend_on_batching() -> None:
    records = ticks(regime_change())
    settings = {"var_method": "hs", "var_window": 250, "var_min_obs": 100, "backtest_window": 100}
    whole = pipeline(**settings).process(records, now_ms=NOW).alerts
    split = pipeline(**settings)
    parts = [split.process(records[i : i + 33], now_ms=NOW).alerts for i in range(0, 600, 33)]
    assert len(whole) > 5
    assert [a.alert_id for a in whole] == [a.alert_id for part in parts for a in part]


def test_a_symbol_on_a_second_partition_is_dead_lettered_not_dropped() -> None:
    """kcat's default partitioner (CRC32) next to murmur2: same symbol, other partition.

    The same offset on the other partition must not pass for a replay of the first.
    """
    first, second = (PriceTick("SPX", 1_600_000_000_000 + i, 100.0 + i) for i in range(2))
    flow = pipeline()
    flow.process([first.to_record(5031, partition=0)], now_ms=NOW)
    out = flow.process([second.to_record(5031, partition=1)], now_ms=NOW)
    assert (out.accepted, out.replayed) == (0, 0)
    (letter,) = out.dead_letters
    assert letter.reason is Reason.WRONG_PARTITION and letter.partition == 1
    assert "lives on partition 0" in letter.detail and "came on partition 1" in letter.detail
    assert flow.book.partition("SPX") == 0


def test_a_customer_on_a_second_partition_is_dead_lettered() -> None:
    tx = [Transaction(f"t{i}", 1_600_000_000_000 + i, "c1", 10.0) for i in range(2)]
    flow = TransactionPipeline()
    flow.process([tx[0].to_record(7, partition=2)], now_ms=NOW)
    out = flow.process([tx[1].to_record(7, partition=3)], now_ms=NOW)
    assert [d.reason for d in out.dead_letters] == [Reason.WRONG_PARTITION]
    assert out.accepted == 0 and out.touched.size == 0


def test_a_rejected_fit_and_its_fallback_are_in_the_symbols_hash() -> None:
    """Issue 21: the real failure case (S&P 500 closes, 13% of days stale) gets an
    unresponsive first GARCH fit; the hash says the model runs on its EWMA fallback."""
    from producers.sources import arch_daily

    prices = arch_daily("sp500")["price"].to_numpy()[:300].copy()
    rng = np.random.default_rng(21)
    for i in np.sort(rng.choice(np.arange(1, 300), size=39, replace=False)):
        prices[i] = prices[i - 1]
    p = pipeline(
        vol_models=("garch",),
        var_method="garch-t",
        refit_first=250,
        refit_every=1000,
        refit_delay=0,
    )
    out = p.process(ticks(prices.tolist()), now_ms=NOW)
    fields = out.snapshots[0].fields()
    assert (fields["fit_status"], fields["fit_reason"]) == ("fallback", "unresponsive")
    assert p.book.vols["garch"].rejections == {"unresponsive": 1}
    assert float(fields["var_99"]) > 0
