r"""Online calibration: raw anomaly scores to tail probabilities, per key and channel.

Every detector's raw score has its own scale (a standardised return, an isolation
depth, a reconstruction error). :class:`TailCalibrator` turns each into a *surprisal*
``S = -log10 P(X >= x)``, the tail probability of the value under the recent
distribution of the same channel of the same key, so that one threshold means the
same thing on every stream: ``S >= 4`` happens once in 10,000 normal observations,
whatever the stream. The calibrated score in [0, 1] is ``1 - 10**-S``
(:func:`score_from_surprisal`).

Per slot and channel, with ``p`` the tail level (default 0.95):

* the median ``m`` and the ``p``-quantile ``u`` are tracked by stochastic approximation
  (Robbins-Monro, steps scaled by the current spread, so the tracker is scale-free);
* excesses ``y = x - u`` over ``u`` follow a generalised Pareto distribution (the
  peaks-over-threshold model of extreme value theory, as in SPOT, Siffer et al. 2017).
  Two more quantiles, at tail probabilities ``(1 - p)/2`` and ``(1 - p)/4``, and the
  exponentially weighted mean excess ``a`` over ``u`` are tracked; the shape ``xi`` is
  the one for which a GPD puts those quantiles where they are, in units of ``a``
  (quantile matching, robust where moment estimators fail on heavy tails), averaged
  over the two and clipped to ``[0, xi_max]`` (an exponential tail at least, which is
  conservative), and ``beta = a (1 - xi)``, so

  .. math:: P(X > x) = (1 - p)\,(1 + \xi y / \beta)^{-1/\xi} \quad (x > u);

* below ``u`` the distribution is piecewise linear through ``(m, 0.5)`` and ``(u, p)``.

Weights are ``1/n`` until ``halflife`` observations, then ``1/halflife`` (an
exponential window), so the calibration follows slow changes of a stream. A value whose
surprisal exceeds ``learn_cap`` is scored but not learnt from: an anomaly must not
teach the calibrator that anomalies are normal (SPOT does the same). Unless such values
recur (more than 1% of the last 500 or so, a hundred times the rate they are claimed to
have): then they are the stream's own behaviour (a regime change, the reset of a
sawtooth, the rare state of a binary series) and the calibrator learns them rather than
alarm forever.

Causality: the surprisal of observation ``i`` uses observations up to ``i - 1``
only; the state then learns ``i``. A NaN raw score gives a NaN surprisal and changes
nothing.

A calibrator can start from a *prior*: the state reached on a sample of the null
distribution (:meth:`TailCalibrator.with_prior`), kept as the fill value of new slots,
so a new key is calibrated from its first observation and its own data takes over as
it arrives. Without a prior a slot reports surprisal 0 until it has seen
``min_obs`` values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np

from engine.core.online import OnlineComponent
from engine.core.slots import Column

_COLD = {"n": 0.0, "m": np.nan, "d": 0.0, "u": np.nan, "a": 0.0, "ne": 0.0, "ex": 0.0}
_TAIL_QUANTILES = 3
_EXCLUDED_WEIGHT = 0.002
_REGIME = 0.01
"""Share of recent values (exponential window of about 500) beyond ``learn_cap`` at
which they are learnt after all: no longer anomalies but the stream's own behaviour."""

#: Surprisal reported for values beyond anything the tail model can express (1e-12).
MAX_SURPRISAL = 12.0


@numba.njit(cache=True, nogil=True)
def _spacing(xi, c):  # pragma: no cover - compiled
    """(q(tau/c) - q(tau)) / mean excess over q(tau), for a GPD of shape ``xi``."""
    if xi < 1e-9:
        return math.log(c)
    return (1.0 - xi) * (c**xi - 1.0) / xi


@numba.njit(cache=True, nogil=True)
def _shape_from_spacing(ratio, c, xi_max):  # pragma: no cover - compiled
    """The shape in [0, xi_max] whose spacing ratio is ``ratio`` (it decreases with xi)."""
    if ratio >= _spacing(0.0, c):
        return 0.0
    if ratio <= _spacing(xi_max, c):
        return xi_max
    lo, hi = 0.0, xi_max
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if _spacing(mid, c) > ratio:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@numba.njit(cache=True, nogil=True)
def _tail_shape(u, a, tail0, xi_max, min_scale):  # pragma: no cover - compiled
    """GPD shape and scale over ``u[0]``: shape from where the next two tracked quantiles
    sit in units of the mean excess, scale from the mean excess."""
    a0 = a[0]
    xi = 0.0
    if a0 > min_scale:  # below the floor the spacings are noise around a point mass
        x1 = _shape_from_spacing((u[1] - u[0]) / a0, 2.0, xi_max)
        x2 = _shape_from_spacing((u[2] - u[0]) / a0, 4.0, xi_max)
        xi = 0.5 * (x1 + x2)
    beta = a0 * (1.0 - xi)  # the mean excess of a GPD is beta / (1 - xi)
    return xi, max(beta, min_scale)


@numba.njit(cache=True, nogil=True)
def _surprisal(x, m, d, u, a, tail0, xi_max, min_scale):  # pragma: no cover - compiled
    """-log10 P(X >= x) from one channel's state (see the module docstring)."""
    level = 1.0 - tail0
    if x > u[0]:
        xi, beta = _tail_shape(u, a, tail0, xi_max, min_scale)
        # anchor at the highest tracked quantile below x (threshold stability of the GPD)
        j = 0
        if x > u[2]:
            j = 2
        elif x > u[1]:
            j = 1
        tj = tail0 / (2.0**j)
        bj = beta + xi * (u[j] - u[0])
        if bj <= 0.0:
            return MAX_SURPRISAL
        y = x - u[j]
        if xi > 1e-9:
            logp = math.log10(tj) - math.log10(1.0 + xi * y / bj) / xi
        else:
            logp = math.log10(tj) - y / bj / math.log(10.0)
        s = -logp
        return s if s < MAX_SURPRISAL else MAX_SURPRISAL
    # body: piecewise linear CDF through (m, 0.5) and (u0, level)
    if x >= m:
        span = u[0] - m
        f = level if span <= 0.0 else 0.5 + (level - 0.5) * (x - m) / span
    else:
        span = 2.0 * d
        f = 0.0 if span <= 0.0 else 0.5 * max(0.0, 1.0 - (m - x) / span)
    return -math.log10(1.0 - f)


@numba.njit(cache=True, nogil=True)
def _calibrate(
    slots,
    raw,
    learn,
    tail0,
    halflife,
    learn_cap,
    min_obs,
    xi_max,
    min_scale,
    n,
    m,
    d,
    u,
    a,
    ne,
    ex,
    out,
):  # pragma: no cover - compiled
    for i in range(slots.shape[0]):
        s = slots[i]
        for k in range(raw.shape[1]):
            x = raw[i, k]
            if np.isnan(x):
                out[i, k] = np.nan
                continue
            cnt = n[s, k]
            uk = u[s, k]
            ak = a[s, k]
            if cnt <= 0.0:  # first value of a slot without a prior: start the trackers here
                out[i, k] = 0.0
                if learn:
                    m[s, k] = x
                    for j in range(3):
                        uk[j] = x
                    n[s, k] = 1.0
                continue
            sv = _surprisal(x, m[s, k], d[s, k], uk, ak, tail0, xi_max, min_scale[k])
            warm = cnt >= min_obs
            out[i, k] = sv if warm else 0.0
            if not learn:
                continue
            if warm and sv > learn_cap:
                # not learnt, unless such values have become common: a new regime
                ex[s, k] += _EXCLUDED_WEIGHT * (1.0 - ex[s, k])
                if ex[s, k] < _REGIME:
                    continue
            else:
                ex[s, k] -= _EXCLUDED_WEIGHT * ex[s, k]
            cnt = min(cnt + 1.0, halflife)
            n[s, k] = cnt
            w = 1.0 / cnt
            # spread around the median (a floor keeps a constant stream's trackers moving)
            d[s, k] += w * (abs(x - m[s, k]) - d[s, k])
            dd = max(d[s, k], 1e-12 * (1.0 + abs(m[s, k])))
            # Robbins-Monro steps scaled by 1/density: ~2d at the median, a_j/tau_j in the tail
            m[s, k] += w * 2.0 * dd * (0.5 if x > m[s, k] else -0.5)
            for j in range(3):
                tj = tail0 / (2.0**j)
                inv_f = max(ak[j], dd) / tj
                if x > uk[j]:
                    ce = min(ne[s, k, j] + 1.0, halflife * tj)
                    ne[s, k, j] = ce
                    ak[j] += (x - uk[j] - ak[j]) / ce
                    uk[j] += w * inv_f * (1.0 - tj)
                else:
                    uk[j] -= w * inv_f * tj
            # keep the quantiles ordered
            if uk[0] < m[s, k]:
                uk[0] = m[s, k]
            for j in range(1, 3):
                if uk[j] < uk[j - 1]:
                    uk[j] = uk[j - 1]


def score_from_surprisal(surprisal: np.ndarray | float) -> np.ndarray:
    """Calibrated score in [0, 1]: ``1 - 10**-S`` (NaN stays NaN).

    >>> score_from_surprisal(np.array([0.0, 2.0, 4.0])).tolist()
    [0.0, 0.99, 0.9999]
    """
    return 1.0 - np.power(10.0, -np.asarray(surprisal, dtype=np.float64))


def surprisal_from_score(score: float) -> float:
    """Inverse of :func:`score_from_surprisal`: the surprisal a score threshold means.

    >>> round(surprisal_from_score(0.9999), 6)
    4.0
    """
    if not 0.0 <= score < 1.0:
        raise ValueError("a score threshold must be in [0, 1)")
    return -math.log10(1.0 - score)


class TailCalibrator(OnlineComponent):
    """Per-key, per-channel online calibration of raw scores (see the module docstring).

    Parameters
    ----------
    name : str
        Component name (its state's key in persisted rows).
    channels : sequence of str
        One name per raw score column.
    level : float
        Tail level ``p`` whose quantile starts the tail model, in (0.5, 1).
    halflife : float
        Observations after which weights stop shrinking (the window of the exponential
        weighting); at least 10.
    learn_cap : float
        Values with a larger surprisal are scored but not learnt.
    min_obs : int
        Observations before a slot without a prior reports anything but 0.
    xi_max : float
        Largest GPD shape allowed (0.5: tails no heavier than a Student t with 2 dof).
    min_scale : float or sequence of float
        Smallest GPD scale per channel, in the channel's units: what a step above a
        point mass (a constant stream, perfectly regular ticks) is measured against.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> cal = TailCalibrator("c", ("x",), halflife=5000)
    >>> cal.ensure(1)
    >>> values = rng.exponential(1.0, (20000, 1))
    >>> _ = cal.update(np.zeros(20000, np.int64), values)
    >>> s = cal.update(np.zeros(3, np.int64), np.array([[0.7], [4.6], [9.2]]))
    >>> [round(float(v), 1) for v in s[:, 0]]  # exact: -log10 exp(-x) = 0.3, 2.0, 4.0
    [0.3, 2.0, 4.0]
    """

    def __init__(
        self,
        name: str,
        channels: Sequence[str],
        *,
        level: float = 0.95,
        halflife: float = 5000.0,
        learn_cap: float = 4.0,
        min_obs: int = 50,
        xi_max: float = 0.5,
        min_scale: float | Sequence[float] = 0.0,
    ) -> None:
        if not channels:
            raise ValueError("a calibrator needs at least one channel")
        if not 0.5 < level < 1.0:
            raise ValueError("level must be strictly between 0.5 and 1")
        if halflife < 10:
            raise ValueError("halflife must be at least 10 observations")
        if not 0.0 <= xi_max < 1.0:
            raise ValueError("xi_max must be in [0, 1)")
        if min_obs < 1:
            raise ValueError("min_obs must be at least 1")
        self.name = name  # type: ignore[misc]
        self.channels = tuple(channels)
        self.level = float(level)
        self.halflife = float(halflife)
        self.learn_cap = float(learn_cap)
        self.min_obs = int(min_obs)
        self.xi_max = float(xi_max)
        self.min_scale = np.broadcast_to(
            np.asarray(min_scale, dtype=np.float64), (len(self.channels),)
        ).copy()
        if (self.min_scale < 0).any():
            raise ValueError("min_scale must be non-negative")
        self._prior: dict[str, np.ndarray] | None = None
        super().__init__()

    # --- state ------------------------------------------------------------------------------

    _FIELDS = ("n", "m", "d", "u", "a", "ne", "ex")
    """Per channel: effective count, median, spread around it, for each of the three
    tail quantiles (tail probabilities ``1 - p``, ``(1 - p)/2``, ``(1 - p)/4``) its value,
    the mean excess over it and its effective count of exceedances, and the recent share
    of values not learnt."""

    def columns(self) -> Sequence[Column]:
        k = len(self.channels)
        prior = self._prior
        columns = []
        for name in self._FIELDS:
            fill = prior[name] if prior is not None else _COLD[name]
            width = k * _TAIL_QUANTILES if name in ("u", "a", "ne") else k
            columns.append(Column(name, np.float64, fill, width))
        return tuple(columns)

    def with_prior(self, sample: np.ndarray, weight: float = 200.0) -> TailCalibrator:
        """Start every new slot from the state reached on ``sample`` (rows of raw scores).

        ``weight`` caps the prior's pseudo-count, so a key's own data outweighs it after
        about that many observations. Returns ``self``; existing slots are not changed.
        """
        sample = np.ascontiguousarray(sample, dtype=np.float64)
        if sample.ndim != 2 or sample.shape[1] != len(self.channels):
            raise ValueError(f"prior sample must have shape (n, {len(self.channels)})")
        probe = TailCalibrator(
            "prior",
            self.channels,
            level=self.level,
            halflife=self.halflife,
            learn_cap=math.inf,
            min_obs=1,
            xi_max=self.xi_max,
            min_scale=self.min_scale,
        )
        probe.ensure(1)
        probe.update(np.zeros(sample.shape[0], np.int64), sample)
        prior = probe.slot_state(0)
        prior["n"] = np.minimum(prior["n"], weight)
        tails = (1.0 - self.level) / 2.0 ** np.arange(_TAIL_QUANTILES)
        prior["ne"] = np.minimum(prior["ne"], weight * np.tile(tails, len(self.channels)))
        return self.set_prior(prior)

    @property
    def prior(self) -> dict[str, np.ndarray] | None:
        """The state new slots start from (``None``: cold, no prior)."""
        return self._prior

    def slot_state(self, slot: int) -> dict[str, np.ndarray]:
        """One slot's calibration state (a prior for :meth:`set_prior`, a model card's entry)."""
        return {name: self.state[name][slot].copy() for name in self._FIELDS}

    def set_prior(self, prior: dict[str, np.ndarray]) -> TailCalibrator:
        """Start every new slot from ``prior`` (a :meth:`slot_state`); existing slots reset."""
        widths = {c.name: max(c.width, 1) for c in self.columns()}
        for name in self._FIELDS:
            value = np.asarray(prior.get(name, ()), dtype=np.float64)
            if value.shape != (widths[name],):
                raise ValueError(f"prior {name!r} must have {widths[name]} values")
        self._prior = {name: np.asarray(prior[name], dtype=np.float64) for name in self._FIELDS}
        capacity = self.state.capacity
        self.state = type(self.state)(self.columns(), capacity)
        return self

    # --- the verb pair ----------------------------------------------------------------------

    def update(self, slots: np.ndarray, raw: np.ndarray, *, learn: bool = True) -> np.ndarray:
        """Surprisal of each raw score (rows in arrival order), then learn it.

        ``raw`` has one column per channel. Returns an array of the same shape; the
        value for row ``i`` uses rows up to ``i - 1`` of the same slot. With
        ``learn=False`` the state is left unchanged (a frozen calibration).
        """
        raw = np.ascontiguousarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(self.channels):
            raise ValueError(f"raw scores must have shape (n, {len(self.channels)})")
        out = np.empty_like(raw)
        st = self.state
        k = len(self.channels)
        cap = st.capacity
        _calibrate(
            np.ascontiguousarray(slots, dtype=np.int64),
            raw,
            learn,
            1.0 - self.level,
            self.halflife,
            self.learn_cap,
            float(self.min_obs),
            self.xi_max,
            self.min_scale,
            st["n"],
            st["m"],
            st["d"],
            st["u"].reshape(cap, k, _TAIL_QUANTILES),
            st["a"].reshape(cap, k, _TAIL_QUANTILES),
            st["ne"].reshape(cap, k, _TAIL_QUANTILES),
            st["ex"],
            out,
        )
        return out

    def score(self, slots: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Surprisal without learning (the state is not changed)."""
        return self.update(slots, raw, learn=False)


class RankCalibration:
    """A frozen calibration by rank: the share of reference raw scores at least as large.

    For a stream calibrated once on a reference window and then frozen (the
    transactions' global calibration), the exact answer to "how rare is this raw
    score?" is its rank among the reference scores. Stored compactly as a grid: raw
    scores at tail probabilities ``10**-(k / per_decade)`` down to ``1 / n``; between
    grid points the surprisal is interpolated linearly in the raw score, beyond the
    largest reference score it is ``log10(n)`` (no rarer than the reference can show).

    >>> cal = RankCalibration.fit(np.arange(10_000.0))
    >>> cal.surprisal(np.array([-1.0, 4999.5, 9899.5, 9989.5, 1e9])).round(2).tolist()
    [0.0, 0.3, 2.0, 3.02, 4.0]
    """

    def __init__(self, x: Sequence[float], s: Sequence[float]) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self.s = np.asarray(s, dtype=np.float64)
        if self.x.ndim != 1 or self.x.shape != self.s.shape or self.x.size < 2:
            raise ValueError("a rank calibration needs two grids of equal length >= 2")
        if (np.diff(self.x) < 0).any() or (np.diff(self.s) < 0).any():
            raise ValueError("rank calibration grids must be non-decreasing")

    @classmethod
    def fit(cls, raw: np.ndarray, per_decade: int = 20) -> RankCalibration:
        """The grid of reference raw scores ``raw`` (NaN ignored)."""
        raw = np.sort(np.asarray(raw, dtype=np.float64)[~np.isnan(raw)])
        n = raw.size
        if n < 10:
            raise ValueError("a rank calibration needs at least 10 reference scores")
        top = math.log10(n)
        s = np.arange(0.0, top, 1.0 / per_decade)
        x = np.quantile(raw, 1.0 - 10.0**-s)
        x = np.append(x, raw[-1])
        s = np.append(s, top)
        # equal raw scores (a point mass) take the largest surprisal they reach
        keep = np.append(np.diff(x) > 0, True)
        return cls(x[keep], s[keep])

    def surprisal(self, raw: np.ndarray) -> np.ndarray:
        """Surprisal of raw scores (NaN stays NaN); 0 below the reference's median-ish body."""
        raw = np.asarray(raw, dtype=np.float64)
        out = np.interp(raw, self.x, self.s, left=0.0, right=float(self.s[-1]))
        return np.where(np.isnan(raw), np.nan, out)

    def to_dict(self) -> dict[str, list[float]]:
        return {"rank_x": self.x.tolist(), "rank_s": self.s.tolist()}

    @classmethod
    def from_dict(cls, doc: dict[str, Sequence[float]]) -> RankCalibration | None:
        """The calibration a card's ``calibration`` entry holds, if it is a rank one."""
        if "rank_x" not in doc:
            return None
        return cls(doc["rank_x"], doc["rank_s"])
