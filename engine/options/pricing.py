"""One entry point for vanilla options of either exercise style, element by element.

European elements are priced in closed form (:mod:`engine.options.black`), American ones by
Barone-Adesi–Whaley (:mod:`engine.options.american`); both return QuantLib's units (vega
and rho per 1.00, theta per year), per unit of underlying.

>>> g = price_vanilla(100.0, [95.0, 95.0], 0.5, 0.05, 0.0, 0.25, [False, False], [False, True])
>>> bool(g.price[1] > g.price[0])  # the American put is worth more
True
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from engine.options.american import barone_adesi_whaley
from engine.options.black import Greeks, generalized_black_scholes

FIELDS = ("price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho")


def price_vanilla(
    spot: ArrayLike,
    strike: ArrayLike,
    t: ArrayLike,
    rate: ArrayLike,
    carry_yield: ArrayLike,
    vol: ArrayLike,
    call: ArrayLike,
    american: ArrayLike,
) -> Greeks:
    """Price and Greeks of European (``american`` False) and American (True) vanilla options.

    Parameters as :func:`engine.options.black.generalized_black_scholes`, plus ``american``
    (array_like of bool). Arrays broadcast; the result has their broadcast shape. American
    elements outside BAW's domain are NaN (see :mod:`engine.options.american`).
    """
    arrays = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (spot, strike, t, rate, carry_yield, vol)),
        np.asarray(call, dtype=bool),
        np.asarray(american, dtype=bool),
    )
    is_american = arrays[-1]
    inputs = arrays[:-1]
    if not is_american.any():
        return generalized_black_scholes(*inputs)
    if is_american.all():
        return barone_adesi_whaley(*inputs)
    shape = is_american.shape
    flat = [x.ravel() for x in inputs]
    mask = is_american.ravel()
    euro = generalized_black_scholes(*(x[~mask] for x in flat))
    amer = barone_adesi_whaley(*(x[mask] for x in flat))
    out = {}
    for name in FIELDS:
        column = np.empty(mask.shape, dtype=np.float64)
        column[~mask] = getattr(euro, name)
        column[mask] = getattr(amer, name)
        out[name] = column.reshape(shape)
    return Greeks(**out)
