"""The price risk book: every symbol's online risk state, advanced one micro-batch at a time.

:class:`PriceRiskBook` composes the online components of the risk core over one slot
index: the sequencer (returns), the return window (historical simulation, fit data), the
realised-variance history (when a fitted model needs it), the volatility models of the
:class:`~engine.core.spec.RiskSpec` (built by name from the registry,
:mod:`engine.core.volatility.registry`, and driven only through what each declares:
``needs``, ``fitted``), one standardised-residual window per volatility model (filtered
HS, Cornish-Fisher, Student-t), and the backtest counters; then computes every VaR/ES
method (:mod:`engine.core.var.methods`). It is pure: state comes in through
``load_row`` and goes out through :meth:`rows`; model fits go to a
:class:`~engine.core.volatility.fitting.Fitter`.

Causality, per symbol: the forecasts reported for tick ``t`` (``after``) use prices up
to and including ``t`` and are for the log return from ``t`` to the symbol's next tick;
``before`` is the forecast made at ``t - 1`` for the return ending at ``t``, against
which a breach is judged.
With session bars (:mod:`engine.core.bars`) read "session close" for "tick": the
models step at each close, on its close-to-close return.

Refits: a micro-batch is split into segments only where a model's fit must be in
place before the batch goes on (a switch due within the same batch, or a delay of 0),
or where its job must be built before the windows roll past its data. A fit's job is
built and submitted at the end of the segment holding its request, kept until the
switch, and installed before the switch row. The schedule counts the symbol's trading
sessions (the ``sessions`` refit clock, from the ``realised`` tracker's session
ordinals; every return counts as a session without one) or returns
(:mod:`engine.core.volatility.refit_clock`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

import numpy as np

from engine.core.backtest import BreachCounters
from engine.core.backtest.rolling import Event, RollingBacktests
from engine.core.bars import BarOutput, IntradayOutput, SessionBars
from engine.core.champion import REASONS, ChampionSelector
from engine.core.keyed import KeyedBook, LoadRow
from engine.core.online import OnlineComponent
from engine.core.sequencer import PriceSequencer, Status, advanced
from engine.core.spec import CHAMPION, RiskSpec
from engine.core.var.methods import VaRMethods, VolOutput
from engine.core.volatility import VolatilityModel
from engine.core.volatility.base import Build
from engine.core.volatility.deep import PredictorLoader
from engine.core.volatility.fitting import FitJob, FitResult, Fitter, SyncFitter, deferred
from engine.core.volatility.refitted import RefittedVolatility
from engine.core.volatility.registry import build_models
from engine.core.volatility.session_rv import SessionRVTracker
from engine.core.volatility.validation import REASONS as FIT_REASONS
from engine.core.windows import RingHistory, RollingWindow, WindowStats

#: A fit not done within the fit pool's bound (:class:`~engine.core.volatility.fitting.PoolFitter`).
FIT_TIMEOUT = FIT_REASONS.index("fit_timeout")

#: Storage of the standardised-residual windows (filtered historical simulation), three
#: of a symbol's four largest columns: float32, about 7 significant digits
#: (:class:`~engine.core.windows.RollingWindow`); their quantiles and tail means are those
#: of the rounded values, identically in the stream, the offline CLI and a restored
#: worker. The returns window stays float64: it is the data of the GARCH/GJR fits, and on
#: the breadth benchmark fits of float32-rounded returns changed the 99% VaR violations
#: or a verdict of 18 of 96 series (docs/benchmarks/index.md, memory per symbol).
WINDOW_DTYPE = np.float32

if TYPE_CHECKING:  # the decoded columns' type; the core never imports the boundary
    from engine.boundary.validation import PriceColumns


@dataclass(slots=True)
class PriceStep:
    """What one micro-batch did.

    ``status`` has one entry per input tick (a :class:`~engine.core.sequencer.Status`);
    every other array has one entry per *accepted* tick, in arrival order, and
    ``accepted`` gives their positions in the input. ``var``/``es`` arrays are indexed
    ``[tick, method, level]`` in the order of ``book.methods`` and ``book.levels`` (every
    VaR level and the ES level, ascending); ``hits`` ``[tick, method, var level]``.
    """

    status: np.ndarray
    accepted: np.ndarray
    slots: np.ndarray
    returns: np.ndarray
    sigma_before: dict[str, np.ndarray]
    sigma: dict[str, np.ndarray]
    var_before: np.ndarray
    var: np.ndarray
    es_before: np.ndarray
    es: np.ndarray
    hits: np.ndarray
    touched: np.ndarray
    """Slots whose state changed in this batch (sorted, unique)."""
    backtest_events: list[Event]
    """Rolling backtests that started rejecting; ``event.row`` indexes the accepted ticks."""
    live: np.ndarray | None = None
    """With a ``champion`` method: per accepted tick, the index (in ``book.methods``) of the
    method live after it."""
    switches: list[Switch] = field(default_factory=list)
    """Champion switches, in row order; ``switch.row`` indexes the accepted ticks."""
    intraday: IntradayOutput | None = None
    """Session bars only (:mod:`engine.core.bars`): every accepted tick (``accepted`` then
    holds the session closes only), judged against the VaR published at its last close."""
    bars: BarOutput | None = None
    """Session bars only: the bar output of every accepted tick of the batch."""


@dataclass(frozen=True, slots=True)
class Switch:
    """The champion's live method changed after accepted row ``row``."""

    row: int
    previous: str
    live: str
    reason: str
    """``lower_loss`` or ``red_zone`` (:mod:`engine.core.champion`)."""
    previous_loss: float
    """The replaced method's mean loss over its window at the switch (NaN if not judged)."""
    live_loss: float
    """The new method's mean loss over its window at the switch."""
    previous_violations: int
    live_violations: int
    """Violations of the champion's VaR level in each method's window at the switch."""


def _concat_segments(
    parts: list[tuple[dict[str, VolOutput], dict[str, WindowStats], WindowStats]],
) -> tuple[dict[str, VolOutput], dict[str, WindowStats], WindowStats]:
    """The segments' outputs as one batch (rows in order); a single segment as it is."""
    if len(parts) == 1:
        return parts[0]

    def cat(items: list, cls: type) -> object:  # type: ignore[type-arg]
        return cls(*(np.concatenate([getattr(i, f.name) for i in items]) for f in fields(cls)))

    first_vols, first_res, _ = parts[0]
    vols = {name: cat([p[0][name] for p in parts], VolOutput) for name in first_vols}
    residuals = {name: cat([p[1][name] for p in parts], WindowStats) for name in first_res}
    return vols, residuals, cat([p[2] for p in parts], WindowStats)  # type: ignore[return-value]


def _with_fallback(result: FitResult, quick: tuple[np.ndarray, float] | None) -> FitResult:
    """``result`` with ``quick`` (parameters, variance) as its fallback, if there is one."""
    if quick is None:
        return result
    return replace(result, fallback=quick[0], fallback_var=quick[1])


class PriceRiskBook(KeyedBook):
    """Online per-symbol risk: returns, volatility models, VaR/ES of every method, breach counts.

    Parameters
    ----------
    spec : RiskSpec
        Models, methods, levels, windows and refit schedules.
    fitter : Fitter
        Where model fits run (:class:`SyncFitter` by default).
    extra : tuple of OnlineComponent
        State components of add-on stages (:mod:`engine.stages`), persisted in the same rows.
    predictors : PredictorLoader, optional
        Builds the predictor of each deep model in ``spec`` (the pipeline passes
        :func:`engine.deep.model.load_cached`); needed only when ``spec`` has one.
    realised : SessionRVTracker, optional
        Realised variance per trading session from the ticks
        (:mod:`engine.core.volatility.session_rv`): a session's value feeds the
        session-level models (HAR-RV, the deep models) at the first tick of the next
        session, where a tick carries no ``rv`` of its own. Without it, only the records'
        ``rv`` does.
    bars : SessionBars, optional
        Session bars (``RISKSTREAM_BARS=session``, :mod:`engine.core.bars`; needs
        ``realised`` for the sessions): the models step once per session close, on its
        close-to-close log return, and every other tick is judged against the VaR
        published at the last close. ``PriceStep``'s per-row arrays then hold the closes
        only. Without it (``tick``), every accepted tick is one return.
    """

    def __init__(
        self,
        spec: RiskSpec | None = None,
        fitter: Fitter | None = None,
        extra: tuple[OnlineComponent, ...] = (),
        predictors: PredictorLoader | None = None,
        realised: SessionRVTracker | None = None,
        bars: SessionBars | None = None,
    ) -> None:
        if bars is not None and realised is None:
            raise ValueError("session bars need the realised-variance tracker's sessions")
        self.spec = spec = spec if spec is not None else RiskSpec()
        self.realised = realised
        self.bars = bars
        self.fitter = fitter if fitter is not None else SyncFitter()
        probs = spec.tail_probs
        self.sequencer = PriceSequencer()
        self.vols: dict[str, VolatilityModel] = build_models(Build(spec, predictors))
        fitted = [m for m in self.vols.values() if isinstance(m, RefittedVolatility)]
        # The fits' data: returns kept beyond the HS window, and realised variances.
        fit_history = max((m.history for m in fitted if m.needs == "returns"), default=0)
        self.returns = RollingWindow(
            "returns",
            spec.window,
            probs,
            min_obs=spec.min_obs,
            extra=max(0, fit_history - spec.window),
        )
        rv_history = max((m.history for m in fitted if m.needs == "rv"), default=0)
        self.rv = RingHistory("rv", rv_history) if rv_history else None
        self.residuals = {
            v: RollingWindow(f"z_{v}", spec.window, probs, min_obs=spec.min_obs, dtype=WINDOW_DTYPE)
            for v in self.vols
        }
        self.var_methods = VaRMethods(spec)
        self.methods = spec.methods
        self.published = self.methods.index(spec.method)
        self.champion: ChampionSelector | None = None
        if CHAMPION in self.methods:
            self.champion = ChampionSelector(
                spec.champion_methods,
                spec.levels,
                spec.champion_level,
                spec.es_level,
                spec.champion_loss,
                spec.champion_window,
                spec.champion_margin,
                spec.champion_patience,
            )
            self._candidates = np.array(
                [self.methods.index(m) for m in spec.champion_methods], np.int64
            )
        self.backtest = BreachCounters(self.methods, spec.var_levels)
        self.rolling = RollingBacktests(
            self.methods,
            spec.levels,
            spec.var_levels,
            spec.es_level,
            spec.monitored,
            spec.backtest_window,
            spec.backtest_significance,
        )
        components: list[OnlineComponent] = [self.sequencer, self.returns]
        if realised is not None:
            components.append(realised)
        if bars is not None:
            components.append(bars)
        if self.rv is not None:
            components.append(self.rv)
        components += [
            *self.vols.values(),
            *self.residuals.values(),
            *([self.champion] if self.champion is not None else []),
            self.backtest,
            self.rolling,
            *extra,
        ]
        super().__init__(tuple(components))
        #: Fit jobs built and submitted, by (symbol, model, request), until installed.
        self._jobs: dict[tuple[str, str, int], FitJob] = {}
        #: Deferred first fits running on their interim fallback, by (symbol, model,
        #: request): reopened when done (:meth:`_reopen_late`).
        self._late: dict[tuple[str, str, int], FitJob] = {}
        #: Per refitted model, the rows of the current batch at which a fit switches.
        self._switch_rows: dict[str, np.ndarray] = {}
        self._var_index = [spec.level_index(level) for level in spec.var_levels]

    @property
    def published_vol(self) -> str:
        """The volatility model whose sigma is published: the published method's (for
        ``champion``, its first candidate's; for ``hs``, the first model)."""
        return self.spec.vol_of(self.spec.method) or next(iter(self.vols))

    @property
    def var_levels(self) -> tuple[float, ...]:
        return self.spec.var_levels

    @property
    def levels(self) -> tuple[float, ...]:
        """Every level forecast: the VaR levels and the ES level, ascending."""
        return self.spec.levels

    def level_index(self, level: float) -> int:
        """Position of a level in the ``[..., level]`` axis of the step's var/es arrays."""
        return self.spec.level_index(level)

    @property
    def es_level(self) -> float:
        return self.spec.es_level

    @property
    def model_name(self) -> str:
        """The published method, e.g. ``gjr-fhs``."""
        return self.spec.method

    @property
    def model_version(self) -> str:
        """Version of the published method's volatility model (or of the HS window).

        For ``champion``: its rule (loss, window, margin, patience); the live method's
        version is :meth:`method_version`.
        """
        spec = self.spec
        if spec.method == CHAMPION:
            return (
                f"champion-{spec.champion_loss}-w{spec.champion_window}"
                f"-m{spec.champion_margin:g}-p{spec.champion_patience}"
            )
        return self.method_version(spec.method)

    def method_version(self, method: str) -> str:
        """Version of a (non-champion) method's volatility model, or of the HS window."""
        vol = self.spec.vol_of(method)
        return f"hs-window{self.spec.window}" if vol is None else self.vols[vol].model_version

    def _refitted(self) -> list[tuple[str, RefittedVolatility]]:
        return [(name, m) for name, m in self.vols.items() if isinstance(m, RefittedVolatility)]

    @staticmethod
    def _fit_data(model: RefittedVolatility, r: np.ndarray, rv: np.ndarray) -> np.ndarray:
        """What a fitted model counts observations of: realised variances or returns."""
        return rv if model.needs == "rv" else r

    # --- the micro-batch step -------------------------------------------------------------

    def step(self, cols: PriceColumns, load_row: LoadRow | None = None) -> PriceStep:
        """Advance every symbol in ``cols`` by its ticks, in arrival order."""
        slots = self.slots_for(cols.symbols, load_row)
        foreign = self.claim(slots, cols.partition)
        status, returns = self.sequencer.update(
            slots, cols.ts, cols.price, cols.event_hash, cols.offset, foreign
        )
        accepted = np.flatnonzero(status == Status.ACCEPTED)
        s, r = slots[accepted], returns[accepted]
        rv = cols.rv[accepted] if cols.rv.size else np.full(s.size, np.nan)
        bar: BarOutput | None = None
        tick_slots = s
        sessions: np.ndarray | None = None  # the refit clock: each row's session ordinal
        if self.realised is not None:  # the record's rv wins; else a closed session's
            ts_a, px_a = cols.ts[accepted], cols.price[accepted]
            tracked = self.realised.update(s, ts_a, px_a, rv)
            sessions = tracked.session
            if self.bars is None:
                rv = tracked.rv
            else:  # the models see the session closes only
                bar = self.bars.update_from(s, ts_a, px_a, tracked, rv)
                keep = np.flatnonzero(bar.closed)
                accepted, s, r, rv = accepted[keep], s[keep], bar.returns[keep], bar.rv[keep]
                sessions = sessions[keep]
        n, m, k = s.size, len(self.methods), len(self.levels)
        sig_b = {v: np.empty(n) for v in self.vols}
        sig_a = {v: np.empty(n) for v in self.vols}
        var_b, var_a = np.empty((n, m, k)), np.empty((n, m, k))
        es_b, es_a = np.empty((n, m, k)), np.empty((n, m, k))
        hits = np.empty((n, m, len(self.var_levels)), dtype=bool)
        # Refits split the batch into segments: a fit whose switch falls inside the batch is
        # installed before the row it applies to. Only the volatility models and the windows
        # need that; VaR/ES, breaches and backtests then run once over the whole batch.
        parts: list[tuple[dict[str, VolOutput], dict[str, WindowStats], WindowStats]] = []
        start = 0
        if self._late:
            self._reopen_late()
        for end in [*self._boundaries(s, r, rv, sessions), n]:
            if end <= start:
                continue
            seg = slice(start, end)
            for _, model in self._refitted():
                model.use_sessions(None if sessions is None else sessions[seg])
            self._install_due(s[seg], seg)
            parts.append(self._segment(s[seg], r[seg], rv[seg]))
            self._submit_pending()
            start = end
        events: list[Event] = []
        live: np.ndarray | None = None
        switches: list[Switch] = []
        if n:
            vols, residuals, hs = _concat_segments(parts)
            var_b, var_a, es_b, es_a = self.var_methods.compute(vols, residuals, hs)
            if self.champion is not None:
                live, switches = self._champion(s, r, var_b, var_a, es_b, es_a)
            hits = self.backtest.update(s, r, var_b[:, :, self._var_index])
            events = self.rolling.update(s, r, var_b, es_b)
            for v, out in vols.items():
                sig_b[v], sig_a[v] = out.before, out.after
        intraday = None
        if bar is not None and self.bars is not None:
            pub, vi = self.published, self._var_index
            es_i = self.spec.level_index(self.spec.es_level)
            intraday = self.bars.judge(
                tick_slots,
                bar,
                var_a[:, pub][:, vi],
                es_a[:, pub, es_i],
                sig_a[self.published_vol] if n else np.empty(0),
            )
        return PriceStep(
            status=status,
            accepted=accepted,
            slots=s,
            returns=r,
            sigma_before=sig_b,
            sigma=sig_a,
            var_before=var_b,
            var=var_a,
            es_before=es_b,
            es=es_a,
            hits=hits,
            touched=np.unique(slots[advanced(status)]),
            backtest_events=events,
            live=live,
            switches=switches,
            intraday=intraday,
            bars=bar,
        )

    def _champion(
        self,
        s: np.ndarray,
        r: np.ndarray,
        var_b: np.ndarray,
        var_a: np.ndarray,
        es_b: np.ndarray,
        es_a: np.ndarray,
    ) -> tuple[np.ndarray, list[Switch]]:
        """Fill the ``champion`` column from its candidates; the live methods and the switches."""
        assert self.champion is not None
        c, j = self._candidates, self.methods.index(CHAMPION)
        out = self.champion.update(s, r, var_b[:, c], es_b[:, c], var_a[:, c], es_a[:, c])
        var_b[:, j], es_b[:, j] = out.var_before, out.es_before
        var_a[:, j], es_a[:, j] = out.var_after, out.es_after
        names = self.champion.names
        switches = [
            Switch(
                row,
                names[prev],
                names[int(out.live[row])],
                REASONS[int(out.reason[row])],
                float(out.scores[row, 0]),
                float(out.scores[row, 1]),
                int(out.scores[row, 2]),
                int(out.scores[row, 3]),
            )
            for row, prev in enumerate(out.switched_from.tolist())
            if prev >= 0
        ]
        return c[out.live], switches

    def _segment(
        self, s: np.ndarray, r: np.ndarray, rv: np.ndarray
    ) -> tuple[dict[str, VolOutput], dict[str, WindowStats], WindowStats]:
        hs = self.returns.update(s, r)
        if self.rv is not None:
            self.rv.update(s, rv)
        vols: dict[str, VolOutput] = {}
        for name, model in self.vols.items():
            vols[name] = model.step(s, r, rv, vols)
            if isinstance(model, RefittedVolatility) and model.schedule.delay == 0 and s.size:
                self._switch_at_request(name, model, int(s[-1]), vols[name])
        residuals = {}
        # A stale price (zero return) is no draw from the residual distribution (spec).
        informative = r != 0.0 if self.spec.residual_zeros == "skip" else True
        for name, out in vols.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                z = np.where((out.before > 0) & informative, r / out.before, np.nan)
            residuals[name] = self.residuals[name].update(s, z)
        return vols, residuals, hs

    # --- refits ------------------------------------------------------------------------------

    def _boundaries(
        self, s: np.ndarray, r: np.ndarray, rv: np.ndarray, sessions: np.ndarray | None
    ) -> list[int]:
        """Segment ends: as few as possible, so that each fit is built and installed in time.

        A fit requested at row ``i`` whose job must be built and, for its switch at row
        ``j`` of this batch, installed by row ``j`` (or built by the slot's ``reach``-th
        observation after the request, row ``j`` too, if that comes first:
        :func:`~engine.core.volatility.refit_clock.plan_refits`) needs a segment end
        ``b`` with ``i < b <= j``: its data is in the windows when the job is built after
        the segment, and its result is installed before row ``j``. The fewest such ends
        stab every interval ``[i + 1, j]``; the greedy choice (by right end) finds them.
        Delay 0 switches at the request itself: ``b = i + 1``. Records each model's
        switch rows for :meth:`_install_due`.
        """
        ends: set[int] = set()
        intervals: list[tuple[int, int]] = []
        self._switch_rows.clear()
        for name, model in self._refitted():
            model.use_sessions(sessions)
            valid = ~np.isnan(self._fit_data(model, r, rv))
            switch, end = model.plan(s, valid)
            self._switch_rows[name] = switch
            requests = np.flatnonzero(end >= 0)
            if requests.size == 0:
                continue
            if model.schedule.delay == 0:
                ends.update((requests + 1).tolist())
                continue
            intervals += zip((requests + 1).tolist(), end[requests].tolist(), strict=True)
        stab = -1
        for lo, hi in sorted(intervals, key=lambda iv: iv[1]):
            if lo > stab:
                stab = hi
                ends.add(hi)
        return sorted(ends)

    def _data_for(self, name: str, model: RefittedVolatility, slot: int) -> np.ndarray:
        history = self.rv if model.needs == "rv" else self.returns
        assert history is not None
        # A fit deferred past its switch and rebuilt (after a restart) may be more returns
        # old than the windows keep beyond the fit's: its data then ends that much later.
        skip = min(model.since_request(slot), model.reach)
        return history.last(slot, model.data_length, skip=skip)

    def _job(self, name: str, model: RefittedVolatility, slot: int):  # type: ignore[no-untyped-def]
        req = int(model.state["req"][slot])
        return model.job(slot, (self.index.keys[slot], req), self._data_for(name, model, slot))

    def _install_due(self, s: np.ndarray, seg: slice) -> None:
        """Install the fits whose switch falls within this segment (waiting if needed).

        A fitter that defers (``ready`` is false: the fit is not done) leaves the fit
        pending: the model keeps its parameters at the switch, and the next segment that
        reaches one of the slot's switch points tries again.
        """
        for name, model in self._refitted():
            switch = self._switch_rows.get(name)
            if switch is None or not switch[seg].any():
                continue
            for slot in np.unique(s[switch[seg]]).tolist():
                key = (self.index.keys[slot], name, int(model.state["req"][slot]))
                job = self._jobs.pop(key, None)
                if job is None:  # e.g. a pending fit restored after a restart
                    job = self._job(name, model, slot)
                if not self.fitter.ready(job):
                    quick = model.quick_fallback(job.data) if model.first_pending(slot) else None
                    if quick is None:  # keep the parameters it has; try at the next switch
                        self._jobs[key] = job
                    else:  # a first fit: EWMA meanwhile rather than no forecast
                        model.install(slot, deferred(quick))
                        self._late[key] = job
                    continue
                result = self.fitter.result(job)
                if result.reason == FIT_TIMEOUT and result.fallback is None:
                    # EWMA rather than nothing for a first fit, as while one is deferred
                    result = _with_fallback(result, model.quick_fallback(job.data))
                model.install(slot, result)

    def _reopen_late(self) -> None:
        """Reopen the deferred first fits that are done, so they take effect at their
        symbol's next return (its first row in this batch): unless the symbol has left
        the book or requested a newer fit, which then supersedes it.

        Checked in the order they were deferred, up to the first not done (the pool runs
        its queue in order): the cost per batch is that of the fits reopened, however
        long the backlog.
        """
        for key, job in list(self._late.items()):
            if not self.fitter.ready(job):
                break
            del self._late[key]
            symbol, name, req = key
            model = self.vols[name]
            assert isinstance(model, RefittedVolatility)
            if symbol not in self.index or model.state["req"][self.index.slot(symbol)] >= 0:
                self.fitter.result(job)  # collected, not used
                continue
            model.reopen(self.index.slot(symbol), req)
            self._jobs[key] = job

    def _switch_at_request(
        self, name: str, model: RefittedVolatility, slot: int, out: VolOutput
    ) -> None:
        """Delay 0: fit now and make the request row's forecast use the new parameters."""
        if not model.requested(slot):
            return
        model.install(slot, self.fitter.result(self._job(name, model, slot)))
        sigma, nu = model.forecast(slot)
        out.after[-1] = sigma
        if model.estimates_nu:
            out.nu_after[-1] = nu

    def _submit_pending(self) -> None:
        """Build and start the fits requested so far, so they run while the stream goes on."""
        for name, model in self._refitted():
            for slot in model.pending().tolist():
                key = (self.index.keys[slot], name, int(model.state["req"][slot]))
                if key not in self._jobs:
                    job = self._job(name, model, slot)
                    self._jobs[key] = job
                    self.fitter.submit(job)

    def clear(self) -> None:
        super().clear()
        self._jobs.clear()
        self._late.clear()
