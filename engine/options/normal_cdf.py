"""The standard normal CDF in branch-free float64 arithmetic, for SIMD numba loops.

``math.erfc`` in a numba loop is a call into the C library per element, which stops the
compiler from vectorising the loop; the functions here are written with only arithmetic,
``floor``, comparisons and a bit cast, so LLVM evaluates 4 or 8 elements per instruction
(the full revaluation of :mod:`engine.options.book`).

Method (the change of variable of Numerical Recipes, 3rd ed., section 6.2.2)::

    erfcx(z) = exp(z^2) erfc(z) = t Q(y),  t = 2 / (2 + z),  y = 2 t - 1 in (-1, 1],  z >= 0
    Phi(x) = erfc(-x / sqrt(2)) / 2,  erfc(-z) = 2 - erfc(z)

``Q`` is a polynomial of degree 24 in ``y`` evaluated by Horner's rule: the Chebyshev
interpolant of ``erfcx(z) / t`` at 80 nodes, computed with 50-digit arithmetic (mpmath),
truncated after degree 24 (the next Chebyshev coefficient is 6e-17) and converted to
powers of ``y`` (their absolute values sum to 1.03, so the conversion loses nothing);
``tests/options/test_normal_cdf.py`` re-derives them. :func:`erfcx` is within 1e-15
relative of mpmath on ``[0, 30]``.

:func:`exp_arith` is Cody–Waite range reduction by ``ln 2`` and a degree-13 Taylor
polynomial on ``|r| <= ln(2)/2`` (remainder below 5e-18 relative), scaled by ``2^n`` built
from its IEEE bits; arguments below -700 give ``exp(-700)`` (1e-304), so :func:`norm_cdf`
is 1e-305 instead of a smaller number below ``x = -37``, irrelevant to a price.
:func:`norm_cdf` is within 4e-16 absolute (two units in the last place of 1) of
``scipy.special.ndtr`` everywhere, and within ``1e-15 (1 + x^2)`` relative where it is
above 1e-300 (the rounding of ``x^2`` in the exponent).

numba's on-disk cache keys a kernel on its own file only: after editing this module, touch
the modules whose kernels inline it (``engine/options/book.py``) or their cached code runs
the old version.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

ERFCX_POWERS = np.array(
    [
        0.5107913526210115,
        0.3435803422069067,
        0.13973604627801475,
        0.01822111575329492,
        -0.010755330944036532,
        -0.0032395925295271534,
        0.0015453060141013286,
        0.0004186479710660508,
        -0.0003315365766901461,
        -1.71852541704069e-05,
        7.223418829504806e-05,
        -1.7076638145079572e-05,
        -1.084298532996441e-05,
        8.06710621122023e-06,
        -5.776423611511427e-07,
        -1.835078540898153e-06,
        1.0305699215291105e-06,
        1.5720540066794157e-08,
        -3.262460935296672e-07,
        1.497143526022312e-07,
        3.6000845292079935e-08,
        -5.145629434357736e-08,
        6.52043461440154e-09,
        6.597367302900275e-09,
        -1.911173728607894e-09,
    ]
)
"""Coefficients of ``Q(y)``, lowest power first (see the module docstring)."""

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693147180369123816490  # ln 2 to 32 bits: n * _LN2_HI is exact for |n| < 2^20
_LN2_LO = 1.90821492927058770002e-10
_INV_SQRT2 = 0.7071067811865476
_EXP_FLOOR = -700.0


@intrinsic
def _bits_to_float(typingctx, bits):
    """The float64 whose IEEE 754 bit pattern is the int64 ``bits`` (no conversion)."""
    if bits != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@numba.njit(cache=True, inline="always", error_model="numpy")
def exp_arith(y: float) -> float:  # pragma: no cover - compiled
    """``exp(y)`` for ``y <= 700`` by arithmetic only; ``exp(-700)`` below -700."""
    y = max(y, _EXP_FLOOR)
    n = np.floor(y * _LOG2E + 0.5)
    r = (y - n * _LN2_HI) - n * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * _bits_to_float((np.int64(n) + 1023) << 52)  # type: ignore[call-arg]


@numba.njit(cache=True, inline="always", error_model="numpy")
def erfcx(z: float) -> float:  # pragma: no cover - compiled
    """The scaled complementary error function ``exp(z^2) erfc(z)`` for ``z >= 0``."""
    t = 2.0 / (2.0 + z)
    y = 2.0 * t - 1.0
    q = ERFCX_POWERS[ERFCX_POWERS.size - 1]
    for j in range(ERFCX_POWERS.size - 2, -1, -1):
        q = q * y + ERFCX_POWERS[j]
    return t * q


@numba.njit(cache=True, inline="always", error_model="numpy")
def norm_cdf_from(x: float, gauss: float) -> float:  # pragma: no cover - compiled
    """``Phi(x)`` given ``gauss = exp(-x^2 / 2)`` computed by the caller (shared work)."""
    upper = 0.5 * erfcx(abs(x) * _INV_SQRT2) * gauss  # Phi(-|x|)
    return upper if x <= 0.0 else 1.0 - upper


@numba.njit(cache=True, inline="always", error_model="numpy")
def norm_cdf(x: float) -> float:  # pragma: no cover - compiled
    """``P(N(0, 1) <= x)`` (see the module docstring for the method and its accuracy)."""
    return norm_cdf_from(x, exp_arith(-0.5 * x * x))


@numba.njit(cache=True, error_model="numpy")
def norm_cdf_array(x: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`norm_cdf` of each element of a 1-d float64 array."""
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = norm_cdf(x[i])
    return out


@numba.njit(cache=True, error_model="numpy")
def erfcx_array(z: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`erfcx` of each element of a 1-d float64 array (each ``>= 0``)."""
    out = np.empty_like(z)
    for i in range(z.size):
        out[i] = erfcx(z[i])
    return out
