"""Refits on the session clock: requests and switches counted in the symbol's trading sessions.

A fit is requested at the first return of a session once ``every`` sessions have closed
since the last request (the first one at the ``first``-th return), and a fit requested
in session ``d`` takes effect at the first return of session ``d + delay``. On daily
closes every return is a session, so the numbers are exactly those of the returns
schedule; offline runs replay the stream's schedule.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pandas as pd
import pytest

from engine.boundary.validation import PriceColumns
from engine.config import Settings
from engine.core import PriceRiskBook
from engine.core.spec import RiskSpec
from engine.core.volatility.fitting import (
    FitJob,
    FitResult,
    PoolFitter,
    RefitSchedule,
    timed_out,
)
from engine.core.volatility.realised import Sessions
from engine.core.volatility.session_rv import SessionRVTracker
from engine.core.volatility.validation import REASONS
from engine.offline.runs import columns_from_frame, run_prices
from engine.pipeline import PricePipeline, session_rv
from producers.sources import sp500_1min, sp500_realized

SESSION_MS = 10_000
TICKS_PER_SESSION = 10


def ten_second_sessions(calendar: str, first: int, last: int):  # type: ignore[no-untyped-def]
    """Sessions of 10 s back to back (every tick is inside one), as a calendar source."""
    opens = np.arange(0, last + SESSION_MS, SESSION_MS, dtype=np.int64)
    return Sessions(opens, opens + SESSION_MS - 1), 0, int(opens[-1] + SESSION_MS)


class StampingFitter:
    """Records the requests submitted; fits at once with parameters that name the request
    (``omega = req * 1e-9``)."""

    def __init__(self) -> None:
        self.requests: list[int] = []

    def submit(self, job: FitJob) -> None:
        self.requests.append(int(job.key[1]))  # type: ignore[index]

    def result(self, job: FitJob) -> FitResult:
        req = int(job.key[1])  # type: ignore[index]
        return FitResult(np.array([req * 1e-9, 0.05, 0.0, 0.9, 8.0]), 1e-4, True)

    def ready(self, job: FitJob) -> bool:
        return True


class TimingOut(StampingFitter):
    """Every fit comes back too late (as :class:`PoolFitter` reports it)."""

    def result(self, job: FitJob) -> FitResult:
        return timed_out()


def _book(clock: str, fitter: StampingFitter | None = None) -> tuple[PriceRiskBook, StampingFitter]:
    spec = RiskSpec(
        vol_models=("garch",),
        method="garch-t",
        garch_refit=RefitSchedule(first=55, every=2, delay=1, clock=clock),  # type: ignore[arg-type]
    )
    fitter = fitter if fitter is not None else StampingFitter()
    tracker = SessionRVTracker(ten_second_sessions, "24/7")
    return PriceRiskBook(spec, fitter, realised=tracker), fitter


def _ticks(n: int) -> PriceColumns:
    """One symbol, a tick a second: ten ticks per session, the first at a session's open."""
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(np.arange(n) * 1000, unit="ms", utc=True),
            "symbol": "SYN",
            "price": 100.0 * np.exp(np.cumsum(0.01 * rng.standard_t(5, n))),
        }
    )
    return columns_from_frame(frame)


def _in_turn(book: PriceRiskBook, cols: PriceColumns, batch: int) -> dict[str, np.ndarray]:
    """Run the ticks in micro-batches of ``batch``; the GARCH sigma and omega after each tick."""
    sigma, omega = [], []
    for start in range(0, cols.ts.size, batch):
        part = slice(start, start + batch)
        step = book.step(
            PriceColumns(
                symbols=cols.symbols[part],
                ts=cols.ts[part],
                price=cols.price[part],
                volume=cols.volume[part],
                rv=cols.rv[part],
                event_ids=cols.event_ids[part],
                event_hash=cols.event_hash[part],
                partition=cols.partition[part],
                offset=cols.offset[part],
                source=cols.source[part],
            )
        )
        sigma.append(step.sigma["garch"])
        if batch == 1:
            omega.append(book.vols["garch"].state["params"][0, 0].copy())
    return {"sigma": np.concatenate(sigma), "omega": np.asarray(omega)}


def test_a_fit_is_requested_every_two_sessions_and_used_from_the_next_sessions_first_return() -> (
    None
):
    book, fitter = _book("sessions")
    run = _in_turn(book, _ticks(120), batch=1)
    # Tick k (0-based) is return k; session s holds ticks 10 s .. 10 s + 9, so the first
    # return of session s is return 10 s. First request at return 55 (session 5), then at
    # the first returns of sessions 7, 9, 11: returns 70, 90, 110.
    assert fitter.requests == [55, 70, 90, 110]
    changed = np.flatnonzero(np.diff(np.nan_to_num(run["omega"]), prepend=0.0) != 0)
    # the first fit (the model's first parameters) takes effect `delay` (1) returns after
    # its request; every refit at the first return of the session after its request's
    assert changed.tolist() == [56, 80, 100]
    assert run["omega"][56] == pytest.approx(55e-9) and run["omega"][80] == pytest.approx(70e-9)


def test_on_the_returns_clock_the_same_ticks_refit_every_two_returns() -> None:
    book, fitter = _book("returns")
    _in_turn(book, _ticks(70), batch=1)
    assert fitter.requests[:4] == [55, 57, 59, 61]
    assert book.vols["garch"].model_version.endswith("-returns")


@pytest.mark.parametrize("batch", [7, 64, 120])
def test_micro_batches_of_any_size_give_the_tick_by_tick_numbers(batch: int) -> None:
    one, _ = _book("sessions")
    many, fitter = _book("sessions")
    cols = _ticks(120)
    expected = _in_turn(one, cols, batch=1)["sigma"]
    np.testing.assert_array_equal(_in_turn(many, cols, batch=batch)["sigma"], expected)
    assert fitter.requests == [55, 70, 90, 110]


#: sha256 of the VaR, ES and every model's sigma of the default configuration (23 VaR
#: methods, ``avg`` included) on S&P 500 daily closes 7000-7999 (chunks of 97 rows),
#: computed with the returns schedule before the session clock existed (the engine of
#: 2026-12-07 with session bars and ``avg``, before issue 22's refit schedule), and
#: computed again with the returns clock when the residual windows became float32
#: (``engine.core.book.WINDOW_DTYPE``; with float64 windows both clocks still give
#: 4513d4555d5017aad76fbc0d651b2acc2266c06872b64d0f1d596892ff63f024).
RETURNS_SCHEDULE_RUN = "4e0807679cc42d84dd1eeb5c9458107c7c2dbdafc147f67a9cb67afa28371e9d"


def _digest(clock: str) -> str:
    settings = Settings(anomaly_enabled=False, refit_clock=clock)
    frame = sp500_realized().iloc[7000:8000].reset_index(drop=True)
    run = run_prices(frame, settings.risk_spec(), realised=session_rv(settings), chunk=97)
    assert np.isfinite(run.sigma["gjr"]).sum() == 745  # fitted from its 250th return on
    digest = hashlib.sha256()
    for a in (run.var, run.es, *(run.sigma[v] for v in sorted(run.sigma))):
        digest.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("clock", ["sessions", "returns"])
def test_daily_closes_give_bit_for_bit_the_numbers_of_the_returns_schedule(clock: str) -> None:
    assert _digest(clock) == RETURNS_SCHEDULE_RUN


def test_one_minute_bars_offline_equal_the_stream_and_refit_once_per_session() -> None:
    """Four NYSE sessions of S&P 500 minute bars; first fit at return 50, used from the
    next return, then one refit per session, each used from the next session's first bar."""
    settings = Settings(anomaly_enabled=False, refit_first=50, refit_every=1, refit_delay=1)
    bars = sp500_1min()
    pipeline = PricePipeline.from_settings(settings)
    now = int(bars["timestamp"].max().value // 1_000_000) + 1
    stream = []
    for start in range(0, len(bars), 97):
        cols = columns_from_frame(bars.iloc[start : start + 97], start)
        out = pipeline.process_columns(cols, [], received=len(cols.ts), now_ms=now)
        stream.append(out.step.var)
    offline = run_prices(bars, settings.risk_spec(), realised=session_rv(settings))
    np.testing.assert_array_equal(np.concatenate(stream), offline.var)
    # GARCH and GJR: the first fit (session 1) and the refits at sessions 2, 3 and 4;
    # the fourth session's fit is never used (no fifth session), so never asked for.
    assert pipeline.book.fitter.fits == 2 * 3  # type: ignore[attr-defined]
    gjr = offline.sigma["gjr"]  # row k holds return k (row 0 has none)
    assert np.isnan(gjr[:51]).all() and np.isfinite(gjr[51:]).all()


def test_a_first_fit_that_timed_out_falls_back_to_ewma_t_at_its_switch_instead_of_nothing() -> None:
    book, _ = _book("sessions", TimingOut())
    run = _in_turn(book, _ticks(70), batch=1)
    garch = book.vols["garch"]
    # requested at return 55, due one return later: the fallback is live from return 56
    assert np.isnan(run["sigma"][:56]).all() and np.isfinite(run["sigma"][56:]).all()
    assert garch.fit_status(0) == ("fallback", "fit_timeout")  # type: ignore[attr-defined]
    np.testing.assert_allclose(garch.state["params"][0], [0.0, 0.06, 0.0, 0.94, 8.0], atol=1e-15)


@pytest.mark.slow
def test_a_fit_not_done_within_the_bound_is_rejected_with_a_reason_not_waited_for() -> None:
    fitter = PoolFitter(1, timeout_s=0.001)  # the pool's process is not even up by then
    try:
        returns = 0.01 * np.random.default_rng(0).standard_t(5, 1000)
        job = FitJob(("SPX", 250), "gjr", returns, None)
        fitter.submit(job)
        result = fitter.result(job)
        assert not result.ok and REASONS[result.reason] == "fit_timeout"
        assert fitter.timeouts == 1 and fitter.fits == 0
    finally:
        fitter.close()


class Deferring(StampingFitter):
    """A fitter that does not wait: each fit is reported not done the first ``late`` times
    the book asks whether it may install it (as :class:`PoolFitter` with ``defer``)."""

    def __init__(self, late: int) -> None:
        super().__init__()
        self.late = late
        self.asked: dict[int, int] = {}

    def ready(self, job: FitJob) -> bool:
        req = int(job.key[1])  # type: ignore[index]
        self.asked[req] = self.asked.get(req, 0) + 1
        return self.asked[req] > self.late


def test_a_deferred_fit_takes_effect_at_its_first_switch_point_after_it_is_done() -> None:
    book, fitter = _book("sessions", Deferring(late=2))
    run = _in_turn(book, _ticks(120), batch=1)
    garch = book.vols["garch"]
    changed = np.flatnonzero(np.diff(np.nan_to_num(run["omega"]), prepend=0.0) != 0)
    # On time (the first test): [56, 80, 100]. Each fit is reported not done the first
    # two times the book asks. The first fit is due at return 56; not done, the model
    # runs meanwhile on EWMA-t (omega 0), and the fit takes effect two returns late, at
    # 58 (every return after a first fit's switch is a switch point). A refit's switch
    # points are the first returns of the sessions after its request's: requested at 70
    # (session 7, due at 80), asked at 80 and 90, it takes effect at 100.
    assert changed.tolist()[:2] == [58, 100]
    assert (run["omega"][56:58] == 0.0).all()
    assert run["omega"][58] == pytest.approx(55e-9) and run["omega"][100] == pytest.approx(70e-9)
    # a forecast from the first switch on, as on time: nothing is left without one
    assert np.isnan(run["sigma"][:56]).all() and np.isfinite(run["sigma"][56:]).all()
    # no fit is requested while one is pending (none at 90); the next request comes at
    # the late switch itself, two sessions having closed since the last one; every fit is
    # submitted once
    assert fitter.requests == [55, 70, 100]
    assert garch.fit_status(0) == ("fitted", "")  # type: ignore[attr-defined]


def test_a_first_fit_still_running_leaves_the_model_on_ewma_t_saying_so() -> None:
    book, _ = _book("sessions", Deferring(late=10**6))
    run = _in_turn(book, _ticks(70), batch=7)
    garch = book.vols["garch"]
    assert np.isnan(run["sigma"][:56]).all() and np.isfinite(run["sigma"][56:]).all()
    assert garch.fit_status(0) == ("fallback", "fit_deferred")  # type: ignore[attr-defined]
    np.testing.assert_allclose(garch.state["params"][0], [0.0, 0.06, 0.0, 0.94, 8.0], atol=1e-15)


def test_a_fitter_that_is_always_ready_gives_the_on_time_numbers_in_any_batches() -> None:
    on_time, _ = _book("sessions")
    cols = _ticks(120)
    expected = _in_turn(on_time, cols, batch=1)["sigma"]
    for batch in (7, 64):
        deferring, _ = _book("sessions", Deferring(late=0))
        np.testing.assert_array_equal(_in_turn(deferring, cols, batch=batch)["sigma"], expected)


@pytest.mark.slow
def test_a_deferring_pool_never_waits_and_installs_the_fit_once_it_is_done() -> None:
    fitter = PoolFitter(1, timeout_s=0.001, defer=True)  # the timeout only bounds waits
    try:
        returns = 0.01 * np.random.default_rng(0).standard_t(5, 1000)
        job = FitJob(("SPX", 250), "gjr", returns, None)
        fitter.submit(job)
        started = time.perf_counter()
        assert not fitter.ready(job)  # the pool's process is not even up yet
        assert not fitter.ready(job)
        assert time.perf_counter() - started < 0.05
        assert fitter.deferred == 1  # counted once per fit
        deadline = time.monotonic() + 60
        while not fitter.ready(job):
            assert time.monotonic() < deadline, "the fit never finished"
            time.sleep(0.05)
        result = fitter.result(job)
        assert result.ok and fitter.timeouts == 0 and fitter.waits == 0 and fitter.fits == 1
    finally:
        fitter.close()


@pytest.mark.slow
def test_a_replay_faster_than_its_fits_never_waits_and_never_leaves_a_symbol_without_var() -> None:
    """Four S&P 500 slices as four symbols, replayed in one go through a deferring pool:
    every first fit is due within microseconds of its request, none is waited for, and
    the published VaR is there from each symbol's first switch on."""
    settings = Settings(anomaly_enabled=False, refit_first=50, refit_delay=1)
    closes = sp500_realized()
    frames = [
        closes.iloc[k * 300 : (k + 1) * 300].assign(symbol=f"S{k}").reset_index(drop=True)
        for k in range(4)
    ]
    frame = pd.concat(frames).sort_values("timestamp", kind="stable").reset_index(drop=True)
    frame = frame[["timestamp", "symbol", "price"]]
    fitter = PoolFitter(1, timeout_s=0.001, defer=True)  # the timeout bounds waits only
    try:
        pipeline = PricePipeline.from_settings(settings, fitter=fitter)
        now = int(frame["timestamp"].max().value // 1_000_000) + 1
        started = time.perf_counter()
        snapshots = []
        for start in range(0, len(frame), 97):
            cols = columns_from_frame(frame.iloc[start : start + 97], start)
            out = pipeline.process_columns(cols, [], received=len(cols.ts), now_ms=now)
            snapshots += out.snapshots
        elapsed = time.perf_counter() - started
        book = pipeline.book
        gjr = book.vols["gjr"]
        assert fitter.waits == 0 and fitter.timeouts == 0 and fitter.deferred >= 1
        statuses = {gjr.fit_status(book.index.slot(f"S{k}")) for k in range(4)}  # type: ignore[attr-defined]
        assert statuses <= {("fallback", "fit_deferred"), ("fitted", "")}, statuses
        # from the first switch (return 51) on, every published VaR is a number
        after_switch = [s for s in snapshots if s.n_ticks > 52]
        assert after_switch and all(np.isfinite(s.var[0.99]) for s in after_switch)
        assert elapsed < 30
    finally:
        fitter.close()
