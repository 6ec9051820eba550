"""Distributions by name: how a volatility forecast becomes VaR and ES.

A VaR method is ``<volatility model>-<distribution>``; every registered distribution is
combined with every volatility model of the spec (:class:`~engine.core.var.methods.VaRMethods`).
A distribution is one class: a :class:`Distribution` registered under its name, that
writes its VaR and ES columns from one model's :class:`Forecast`::

    @register_distribution
    class Laplace(Distribution):
        name = "laplace"

        def fill(self, var, es, col, forecast, columns):
            ...

The built-in distributions (:mod:`engine.core.var.distributions`) register when
:mod:`engine.core.var` is imported: ``normal``, ``t``, ``fhs``, ``cf``, ``mix``. Names are
listed in registration order, which is the order of the methods' columns; a
distribution may read the columns of those registered before it (``mix`` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import numpy as np

D = TypeVar("D", bound="type[Distribution]")

_DISTRIBUTIONS: dict[str, type[Distribution]] = {}


@dataclass(frozen=True, slots=True)
class Forecast:
    """One volatility model's forecasts on one side of the returns (before or after each).

    Rows are ticks. ``sigma`` and ``nu`` come from the model (``nu`` NaN unless
    ``model_nu``); ``q``, ``tail`` and ``moments`` describe the window of the model's
    standardised residuals ``r / sigma_before`` (:class:`~engine.core.windows.WindowStats`):
    empirical quantiles and tail means, columns from the highest level down, and the
    moments (mean, standard deviation, skewness, excess kurtosis).
    """

    sigma: np.ndarray
    nu: np.ndarray
    q: np.ndarray
    tail: np.ndarray
    moments: np.ndarray
    model_nu: bool
    """Whether the model estimates its own Student-t ``nu`` (GARCH family)."""


class Distribution:
    """A standardised loss distribution: VaR and ES columns from a :class:`Forecast`.

    ``levels`` are the spec's levels, ascending (the last axis of ``var`` and ``es``).
    Losses are positive, in log-return units.
    """

    name: ClassVar[str]

    def __init__(self, levels: Sequence[float]) -> None:
        self.levels = tuple(levels)

    def fill(
        self,
        var: np.ndarray,
        es: np.ndarray,
        col: int,
        forecast: Forecast,
        columns: Mapping[str, int],
    ) -> None:
        """Write ``var[:, col, :]`` and ``es[:, col, :]`` (``[tick, method, level]``).

        ``columns`` gives the column of each distribution of the same volatility model;
        those registered before this one are already filled.
        """
        raise NotImplementedError


def register_distribution(cls: D) -> D:
    """Class decorator: register a distribution under its ``name`` (unique, no ``-``)."""
    if not (isinstance(cls, type) and issubclass(cls, Distribution)):
        raise TypeError(f"{cls!r} is not a Distribution")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name or "-" in name:
        raise ValueError(f"{cls.__name__} needs a name without '-'")
    if name in _DISTRIBUTIONS and _DISTRIBUTIONS[name] is not cls:
        raise ValueError(f"distribution {name!r} is already registered")
    _DISTRIBUTIONS[name] = cls
    return cls


def unregister_distribution(name: str) -> None:
    """Forget a registered distribution (for tests that register one of their own)."""
    _DISTRIBUTIONS.pop(name, None)


def distribution_names() -> tuple[str, ...]:
    """The registered distributions, in registration order (the methods' column order).

    >>> distribution_names()
    ('normal', 't', 'fhs', 'cf', 'mix')
    """
    return tuple(_DISTRIBUTIONS)


def distribution(name: str) -> type[Distribution]:
    """The class registered as ``name``; ``ValueError`` listing the registered names otherwise."""
    try:
        return _DISTRIBUTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown distribution {name!r}; choose from {list(distribution_names())}"
        ) from None
