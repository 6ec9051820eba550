"""Champion selection: per symbol, the published VaR/ES comes from the best-scoring method.

Model risk governance inside the stream. For every symbol, the ``champion`` method
publishes the VaR and ES of one of its *candidates* (methods of the same book), the
*live* method, chosen online by the candidates' own rolling backtests:

* every tick with a return, each candidate's forecast made before it (for the return
  ending at that tick) is scored: the quantile (pinball) loss of its VaR at the highest
  VaR level, or the Fissler-Ziegel FZ0 loss of its (VaR, ES) pair at the ES level
  (Patton, Ziegel and Chen 2019), and its violation of the highest-level VaR counted;
  sums over the last ``window`` scored ticks are kept per candidate, O(1) per tick;
* a candidate is *eligible* once it was scored on a full window and is not in the red
  zone of the Basel traffic light (``red_at`` or more violations in the window: the
  same binomial threshold as :mod:`engine.core.backtest.rolling`);
* **red zone**: when the live method reaches ``red_at`` violations in its window, the
  eligible candidate with the lowest mean loss replaces it at once (reason
  ``red_zone``), so a red champion never outlives one backtest window (unless no
  candidate is eligible: then it stays, and the hash and its traffic light say so);
* **hysteresis**: otherwise a challenger replaces the live method only after it has
  been the best eligible candidate, with a mean loss below the live method's by
  ``margin``, on ``patience`` consecutive scored ticks (reason ``lower_loss``). The
  margin is a fraction of the live method's mean loss for ``pinball`` (a loss in
  log-return units), an absolute difference for ``fz0`` (whose differences are
  unit-free: FZ0 changes by a constant under a change of scale).

Causality: the decision after tick ``t`` uses only forecasts made before ``t`` and the
returns up to ``t`` (forecasts already judged); the champion's forecast *after* ``t``
is the newly live method's forecast after ``t``, and its forecast *before* ``t`` is the
method that was live after ``t - 1``. Until a challenger is eligible, the first
candidate (the *base*) is live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np

from engine.core.backtest.stats import zone_thresholds
from engine.core.online import OnlineComponent
from engine.core.slots import Column, bit_dtype, ring_capacity

Loss = Literal["pinball", "fz0"]
LOSSES: tuple[Loss, ...] = ("pinball", "fz0")
#: Reasons a method is live, by code (persisted as the code).
REASONS = ("initial", "lower_loss", "red_zone")
INITIAL, LOWER_LOSS, RED_ZONE = 0, 1, 2
#: Candidates' violations are one bit each of an int64 ring entry.
MAX_CANDIDATES = 63


@numba.njit(cache=True, nogil=True)
def _loss(r, v, e, kind, tau, alpha):  # pragma: no cover - compiled
    """One candidate's loss on return ``r`` for its VaR ``v`` and ES ``e`` (positive losses)."""
    if kind == 0:  # pinball of the quantile q = -v at tail probability tau
        if np.isnan(v):
            return np.nan
        u = r + v
        return (tau - 1.0) * u if u < 0.0 else tau * u
    if np.isnan(v) or np.isnan(e) or e <= 0.0:
        return np.nan
    hit = (-v - r) if r < -v else 0.0
    return hit / (alpha * e) + v / e + np.log(e) - 1.0


@numba.njit(cache=True, nogil=True)
def _select(
    slots,
    returns,
    var_b,
    es_b,
    var_a,
    es_a,
    var_level,
    es_level,
    kind,
    tau,
    alpha,
    window,
    red_at,
    margin,
    relative,
    patience,
    pushed,
    losses,
    hit_ring,
    sums,
    counts,
    live,
    challenger,
    streak,
    why,
    out_vb,
    out_eb,
    out_va,
    out_ea,
    out_live,
    out_from,
    out_why,
    out_score,
):  # pragma: no cover - compiled
    n, c = var_b.shape[0], var_b.shape[1]
    cap, hcap = losses.shape[1], hit_ring.shape[1]
    for i in range(n):
        s = slots[i]
        now = live[s]
        out_vb[i] = var_b[i, now]
        out_eb[i] = es_b[i, now]
        out_from[i] = -1
        r = returns[i]
        if not np.isnan(r):
            p = pushed[s]
            full = p >= window
            old_hits = hit_ring[s, (p - window) % hcap] if full else 0
            bits = 0
            for j in range(c):
                v = var_b[i, j, var_level]
                if kind == 0:
                    loss = _loss(r, v, 0.0, kind, tau, alpha)
                else:
                    loss = _loss(r, var_b[i, j, es_level], es_b[i, j, es_level], kind, tau, alpha)
                old = losses[s, ((p - window) * c + j) % cap] if full else np.nan
                if not np.isnan(loss):
                    sums[s, j] += loss
                    counts[s, 2 * j] += 1
                    if -r > v:
                        counts[s, 2 * j + 1] += 1
                        bits |= 1 << j
                if not np.isnan(old):
                    sums[s, j] -= old
                    counts[s, 2 * j] -= 1
                counts[s, 2 * j + 1] -= (old_hits >> j) & 1
                losses[s, (p * c + j) % cap] = loss
            hit_ring[s, p % hcap] = bits
            pushed[s] = p + 1
            if (p + 1) % window == 0:  # exact sums at deterministic points bound rounding drift
                for j in range(c):
                    total = 0.0
                    for t in range(p + 1 - window, p + 1):
                        x = losses[s, (t * c + j) % cap]
                        if not np.isnan(x):
                            total += x
                    sums[s, j] = total
            best, best_loss = -1, np.inf
            for j in range(c):
                if counts[s, 2 * j] == window and counts[s, 2 * j + 1] < red_at:
                    mean = sums[s, j] / window
                    if mean < best_loss:
                        best, best_loss = j, mean
            if counts[s, 2 * now + 1] >= red_at:  # the live method is in the red zone
                if best >= 0:
                    live[s], why[s] = best, RED_ZONE
                    challenger[s], streak[s] = -1, 0
                    out_from[i] = now
            elif best >= 0 and best != now and counts[s, 2 * now] == window:
                current = sums[s, now] / window
                bar = current - margin * abs(current) if relative else current - margin
                if best_loss < bar:
                    if challenger[s] == best:
                        streak[s] += 1
                    else:
                        challenger[s], streak[s] = best, 1
                    if streak[s] >= patience:
                        live[s], why[s] = best, LOWER_LOSS
                        challenger[s], streak[s] = -1, 0
                        out_from[i] = now
                else:
                    challenger[s], streak[s] = -1, 0
            else:
                challenger[s], streak[s] = -1, 0
        now = live[s]
        out_live[i] = now
        out_why[i] = why[s]
        old = out_from[i]
        if old >= 0:  # the scores behind the switch, as they stood at this row
            if counts[s, 2 * old] == window:
                out_score[i, 0] = sums[s, old] / window
            out_score[i, 1] = sums[s, now] / window
            out_score[i, 2] = counts[s, 2 * old + 1]
            out_score[i, 3] = counts[s, 2 * now + 1]
        out_va[i] = var_a[i, now]
        out_ea[i] = es_a[i, now]


@dataclass(frozen=True, slots=True)
class ChampionOutput:
    """The champion's forecasts for one micro-batch (rows in input order).

    ``var_*``/``es_*`` are ``[row, level]`` (the levels of the inputs), positive losses in
    log-return units. ``live`` is the candidate live after each row; ``switched_from`` the
    candidate it replaced at that row, ``-1`` where nothing changed; ``reason`` the code
    (:data:`REASONS`) of why the live method is live after each row; ``scores`` at the
    switch rows (NaN elsewhere): the replaced and the new method's mean losses over the
    window, then their violations in it.
    """

    var_before: np.ndarray
    es_before: np.ndarray
    var_after: np.ndarray
    es_after: np.ndarray
    live: np.ndarray
    switched_from: np.ndarray
    reason: np.ndarray
    scores: np.ndarray


class ChampionSelector(OnlineComponent):
    """Per symbol, the live method among ``candidates`` (see the module docstring).

    Parameters
    ----------
    candidates : sequence of str
        Method names; the first is live until another is eligible.
    levels : sequence of float
        Levels of the forecast arrays' last axis, ascending.
    var_level : float
        VaR level scored by ``pinball`` and whose violations set the traffic light.
    es_level : float
        ES level scored by ``fz0``.
    loss : {"pinball", "fz0"}
        The scoring function.
    window : int
        Scored ticks per rolling window (also the traffic light's window).
    margin : float
        How much lower a challenger's mean loss must be (relative for ``pinball``,
        absolute for ``fz0``), >= 0.
    patience : int
        Consecutive ticks a challenger must lead by ``margin`` before it goes live, >= 1.

    >>> sel = ChampionSelector(("a", "b"), (0.99,), 0.99, 0.99, window=20, patience=1)
    >>> sel.ensure(1)
    >>> var = np.tile([[0.01], [0.06]], (30, 1, 1))  # "a" too small for 5% losses
    >>> out = sel.update(np.zeros(30, np.int64), np.full(30, -0.05), var, var, var, var)
    >>> sel.names[int(out.live[-1])], sel.reason(0)
    ('b', 'red_zone')
    """

    name = "champion"

    def __init__(
        self,
        candidates: Sequence[str],
        levels: Sequence[float],
        var_level: float,
        es_level: float,
        loss: Loss = "pinball",
        window: int = 250,
        margin: float = 0.0,
        patience: int = 1,
    ) -> None:
        if not 1 <= len(candidates) <= MAX_CANDIDATES:
            raise ValueError(f"champion needs 1 to {MAX_CANDIDATES} candidates")
        if len(set(candidates)) != len(candidates):
            raise ValueError("champion candidates must be distinct")
        if loss not in LOSSES:
            raise ValueError(f"champion loss {loss!r}: choose from {list(LOSSES)}")
        if window < 20:
            raise ValueError("champion window must be at least 20 returns")
        if margin < 0.0:
            raise ValueError("champion margin must be >= 0")
        if patience < 1:
            raise ValueError("champion patience must be >= 1")
        self.names = tuple(candidates)
        self.levels = tuple(levels)
        self.var_level, self.es_level = float(var_level), float(es_level)
        self.loss, self.window = loss, int(window)
        self.margin, self.patience = float(margin), int(patience)
        self.red_at = zone_thresholds(self.window, 1.0 - self.var_level)[1]
        super().__init__()

    def columns(self) -> Sequence[Column]:
        c = len(self.names)
        return (
            Column("pushed", np.int64, 0),
            Column("loss_pushed", np.int64, 0),
            Column("sums", np.float64, 0.0, c),
            Column("counts", np.int64, 0, 2 * c),
            Column("live", np.int64, 0),
            Column("challenger", np.int64, -1),
            Column("streak", np.int64, 0),
            Column("why", np.int64, INITIAL),
            Column(  # one bit per candidate
                "hits",
                bit_dtype(c),
                0,
                ring_capacity(self.window),
                kind="ring",
                ring_head="pushed",
                was=np.int64,
            ),
            Column(
                "losses",
                np.float64,
                np.nan,
                ring_capacity(self.window * c),
                kind="ring",
                ring_head="loss_pushed",
            ),
        )

    def update(
        self,
        slots: np.ndarray,
        returns: np.ndarray,
        var_before: np.ndarray,
        es_before: np.ndarray,
        var_after: np.ndarray,
        es_after: np.ndarray,
    ) -> ChampionOutput:
        """Score one micro-batch and choose; forecast arrays are ``[row, candidate, level]``.

        ``returns`` are the log returns ending at each row (NaN: no return, nothing
        scored); ``*_before`` the forecasts made before each return, ``*_after`` after it.
        """
        n, k = slots.shape[0], len(self.levels)
        out = ChampionOutput(
            np.empty((n, k)), np.empty((n, k)), np.empty((n, k)), np.empty((n, k)),
            np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64),
            np.full((n, 4), np.nan),
        )  # fmt: skip
        st = self.state
        c = len(self.names)
        _select(
            slots, returns, var_before, es_before, var_after, es_after,
            self.levels.index(self.var_level), self.levels.index(self.es_level),
            LOSSES.index(self.loss), 1.0 - self.var_level, 1.0 - self.es_level,
            self.window, self.red_at, self.margin, self.loss == "pinball", self.patience,
            st["pushed"], st["losses"], st["hits"], st["sums"].reshape(-1, c),
            st["counts"].reshape(-1, 2 * c), st["live"], st["challenger"], st["streak"],
            st["why"], out.var_before, out.es_before, out.var_after, out.es_after,
            out.live, out.switched_from, out.reason, out.scores,
        )  # fmt: skip
        st["loss_pushed"][:] = st["pushed"] * c
        return out

    def rebuild(self, slot: int) -> None:
        """Nothing transient: sums, counts and the decision state are persisted."""

    def live_method(self, slot: int) -> str:
        return self.names[int(self.state["live"][slot])]

    def reason(self, slot: int) -> str:
        """Why the live method is live: ``initial``, ``lower_loss`` or ``red_zone``."""
        return REASONS[int(self.state["why"][slot])]

    def scores(self, slot: int) -> dict[str, tuple[float, int, int]]:
        """Per candidate: mean loss over its window (NaN until full), scored ticks, violations."""
        c = len(self.names)
        sums = self.state["sums"][slot].reshape(c)
        counts = self.state["counts"][slot].reshape(c, 2)
        return {
            name: (
                float(sums[j] / self.window) if counts[j, 0] == self.window else float("nan"),
                int(counts[j, 0]),
                int(counts[j, 1]),
            )
            for j, name in enumerate(self.names)
        }

    def explain(self, slot: int) -> str:
        """One line for the symbol's hash: the live method, why, and the scores behind it.

        >>> sel = ChampionSelector(("a", "b"), (0.99,), 0.99, 0.99, window=20)
        >>> sel.ensure(1); sel.explain(0)
        'initial: a is the base method (no candidate judged on a full window of 20 yet)'
        """
        return self.explain_many(np.array([slot]))[0]

    def explain_many(self, slots: np.ndarray) -> list[str]:
        """:meth:`explain` for each of ``slots`` (the state gathered in one step per column)."""
        st, c, w = self.state, len(self.names), self.window
        live = st["live"][slots]
        rows = np.arange(slots.shape[0])
        counts = st["counts"][slots].reshape(-1, c, 2)[rows, live]
        means = st["sums"][slots].reshape(-1, c)[rows, live] / w
        out = []
        for j, why, n, x, mean in zip(
            live.tolist(),
            st["why"][slots].tolist(),
            counts[:, 0].tolist(),
            counts[:, 1].tolist(),
            means.tolist(),
            strict=True,
        ):
            out.append(self._line(self.names[j], REASONS[why], n, x, mean if n == w else np.nan))
        return out

    def _line(self, live: str, why: str, n: int, x: int, mean: float) -> str:
        """The sentence of :meth:`explain` (``mean`` NaN until the window is full, as :meth:`scores`)."""
        if why == "initial":
            if n < self.window:
                return (
                    f"initial: {live} is the base method (no candidate judged on a full window "
                    f"of {self.window} yet)"
                )
            return f"initial: {live} kept, mean {self.loss} {mean:.4g} over {self.window} returns"
        if why == "red_zone":
            return (
                f"red_zone: replaced a method in the red zone; {live} has {x} violations of "
                f"its {self.var_level:g} VaR in {n} returns, mean {self.loss} {mean:.4g}"
            )
        return (
            f"lower_loss: {live} led by margin {self.margin:g} for {self.patience} returns; "
            f"mean {self.loss} {mean:.4g} over {self.window} returns"
        )
