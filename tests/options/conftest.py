"""Fixtures of the options tests: QuantLib as the reference, and the grid it is compared on.

QuantLib prices one option at a time (about 50 µs each), which is fine for grids of a few
thousand options.

Time is whole days from the evaluation date, so ``t = days / 365`` (Actual/365 Fixed) is
exactly the year fraction QuantLib uses; curves are flat and continuously compounded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest
import QuantLib as ql

Model = Literal["bsm", "black76", "gk"]
Engine = Literal["analytic", "baw", "binomial", "qdfp"]

TODAY = ql.Date(15, 3, 2024)
DAY_COUNT = ql.Actual365Fixed()
GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho")


@dataclass(frozen=True, slots=True)
class Case:
    """One option on the grid: spot (or forward), strike, days to expiry, r, q, vol, call."""

    spot: float
    strike: float
    days: int
    rate: float
    carry_yield: float
    vol: float
    call: bool

    @property
    def t(self) -> float:
        return self.days / 365.0


class QuantLibPricer:
    """Reprices :class:`Case` s with one set of quotes relinked per case (fast enough for grids)."""

    def __init__(self, model: Model = "bsm") -> None:
        ql.Settings.instance().evaluationDate = TODAY
        self.model = model
        self.spot, self.rate, self.yld, self.vol = (ql.SimpleQuote(1.0) for _ in range(4))
        rts = ql.YieldTermStructureHandle(
            ql.FlatForward(TODAY, ql.QuoteHandle(self.rate), DAY_COUNT, ql.Continuous)
        )
        qts = ql.YieldTermStructureHandle(
            ql.FlatForward(TODAY, ql.QuoteHandle(self.yld), DAY_COUNT, ql.Continuous)
        )
        vts = ql.BlackVolTermStructureHandle(
            ql.BlackConstantVol(TODAY, ql.NullCalendar(), ql.QuoteHandle(self.vol), DAY_COUNT)
        )
        spot = ql.QuoteHandle(self.spot)
        if model == "bsm":
            self.process = ql.BlackScholesMertonProcess(spot, qts, rts, vts)
        elif model == "gk":
            self.process = ql.GarmanKohlagenProcess(spot, qts, rts, vts)  # sic: QuantLib spelling
        else:
            self.process = ql.BlackProcess(spot, rts, vts)

    def option(self, case: Case, engine: Engine = "analytic", steps: int = 0) -> ql.VanillaOption:
        self.spot.setValue(case.spot)
        self.rate.setValue(case.rate)
        self.yld.setValue(case.carry_yield)
        self.vol.setValue(case.vol)
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if case.call else ql.Option.Put, case.strike)
        expiry = TODAY + case.days
        if engine == "analytic":
            option = ql.VanillaOption(payoff, ql.EuropeanExercise(expiry))
            option.setPricingEngine(ql.AnalyticEuropeanEngine(self.process))
            return option
        option = ql.VanillaOption(payoff, ql.AmericanExercise(TODAY, expiry))
        if engine == "baw":
            option.setPricingEngine(ql.BaroneAdesiWhaleyApproximationEngine(self.process))
        elif engine == "binomial":
            option.setPricingEngine(ql.BinomialLRVanillaEngine(self.process, steps))
        else:
            option.setPricingEngine(
                ql.QdFpAmericanEngine(self.process, ql.QdFpAmericanEngine.highPrecisionScheme())
            )
        return option

    def greeks(self, cases: Iterable[Case]) -> dict[str, np.ndarray]:
        """Price and every Greek of European options; Black-76's rho is ``rho + dividendRho``."""
        rows = []
        for case in cases:
            o = self.option(case)
            rho = o.rho() + o.dividendRho() if self.model == "black76" else o.rho()
            dividend_rho = 0.0 if self.model == "black76" else o.dividendRho()
            rows.append((o.NPV(), o.delta(), o.gamma(), o.vega(), o.theta(), rho, dividend_rho))
        table = np.array(rows)
        return {name: table[:, i] for i, name in enumerate(GREEKS)}

    def prices(self, cases: Iterable[Case], engine: Engine, steps: int = 0) -> np.ndarray:
        return np.array([self.option(c, engine, steps).NPV() for c in cases])


def arrays(cases: list[Case]) -> dict[str, np.ndarray]:
    """The grid as column arrays for the vectorised pricers."""
    return {
        "spot": np.array([c.spot for c in cases]),
        "strike": np.array([c.strike for c in cases]),
        "t": np.array([c.t for c in cases]),
        "rate": np.array([c.rate for c in cases]),
        "carry_yield": np.array([c.carry_yield for c in cases]),
        "vol": np.array([c.vol for c in cases]),
        "call": np.array([c.call for c in cases]),
    }


#: The European grid: moneyness S/K from 0.5 to 2, expiries from 1 day to 5 years, rates
#: from -1% to 8%, yields 0 to 5%, vols 5% to 100%, calls and puts: 4,704 options.
SPOTS = (50.0, 80.0, 95.0, 100.0, 105.0, 125.0, 200.0)
DAYS = (1, 7, 30, 91, 365, 730, 1825)
RATES = (-0.01, 0.0, 0.03, 0.08)
YIELDS = (0.0, 0.02, 0.05)
VOLS = (0.05, 0.2, 0.5, 1.0)


def european_grid() -> list[Case]:
    return [
        Case(s, 100.0, d, r, q, v, c)
        for s, d, r, q, v, c in itertools.product(SPOTS, DAYS, RATES, YIELDS, VOLS, (True, False))
    ]


@pytest.fixture(scope="session")
def grid() -> list[Case]:
    """The European grid as :class:`Case` s (QuantLib's input)."""
    return european_grid()


@pytest.fixture(scope="session")
def grid_arrays(grid: list[Case]) -> dict[str, np.ndarray]:
    """The European grid as column arrays (the vectorised pricers' input)."""
    return arrays(grid)


@pytest.fixture(scope="session")
def quantlib() -> type[QuantLibPricer]:
    """The QuantLib reference pricer class: ``quantlib(model).greeks(cases)``."""
    return QuantLibPricer


@pytest.fixture(scope="session")
def case() -> type[Case]:
    """The :class:`Case` class, to build single reference cases in a test."""
    return Case
