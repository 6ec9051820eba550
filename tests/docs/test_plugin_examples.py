"""The "Adding a model" and "Adding a distribution" examples of the docs work as written.

Each page's first Python block under its heading is executed as a plug-in module would be
imported; the registered class must then run in the price book by name, with the numbers
the example's docstring states. The registrations are undone afterwards.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from engine.boundary.validation import PriceColumns
from engine.core.book import PriceRiskBook
from engine.core.spec import RiskSpec
from engine.core.var.registry import distribution_names, unregister_distribution
from engine.core.volatility.registry import unregister, vol_model_names
from engine.offline.runs import columns_from_frame

from .helpers import DOCS


def example(page: str, heading: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1]
    match = re.search(r"```python\n(.*?)\n```", section, re.S)
    assert match, f"no Python example under '{heading}' in {page}"
    return match.group(1)


def one_symbol(returns: np.ndarray) -> PriceColumns:
    n = returns.size + 1
    price = 100.0 * np.exp(np.concatenate([[0.0], returns.cumsum()]))
    stamps = pd.to_datetime(np.arange(n) * 1000, unit="ms", utc=True)
    return columns_from_frame(pd.DataFrame({"timestamp": stamps, "symbol": "A", "price": price}))


def test_the_model_example_registers_and_runs_in_the_book_by_name() -> None:
    code = example("models/volatility.md", "Adding a model")
    try:
        exec(compile(code, "volatility.md", "exec"), {"__name__": "docs_example"})
        assert "meanabs" in vol_model_names()
        spec = RiskSpec(vol_models=("ewma", "meanabs"), method="meanabs-t")
        assert {f"meanabs-{d}" for d in distribution_names()} <= set(spec.methods)
        returns = np.random.default_rng(0).normal(0, 0.01, 40)
        step = PriceRiskBook(spec).step(one_symbol(returns))
        sigma = step.sigma["meanabs"][1:]  # the first tick has no return
        expected = np.sqrt(np.pi / 2) * np.cumsum(np.abs(returns)) / np.arange(1, 41)
        assert np.isnan(sigma[:4]).all()
        np.testing.assert_allclose(sigma[4:], expected[4:], rtol=1e-12)
    finally:
        unregister("meanabs")
    assert "meanabs" not in vol_model_names()


def test_the_distribution_example_registers_and_prices_every_model() -> None:
    code = example("models/var-es.md", "Adding a distribution")
    try:
        exec(compile(code, "var-es.md", "exec"), {"__name__": "docs_example"})
        assert distribution_names()[-1] == "laplace"
        spec = RiskSpec(vol_models=("ewma",), method="ewma-laplace")
        book = PriceRiskBook(spec)
        returns = np.random.default_rng(1).normal(0, 0.01, 60)
        step = book.step(one_symbol(returns))
        j, k = book.methods.index("ewma-laplace"), book.level_index(0.99)
        sigma = step.sigma["ewma"]
        ready = np.isfinite(sigma)
        assert ready.sum() > 30
        # Laplace with unit variance: VaR_99 = ln(50) / sqrt(2) sigma, ES = VaR + sigma / sqrt(2)
        np.testing.assert_allclose(step.var[ready, j, k], np.log(50) / np.sqrt(2) * sigma[ready])
        np.testing.assert_allclose(
            step.es[ready, j, k] - step.var[ready, j, k], sigma[ready] / np.sqrt(2)
        )
    finally:
        unregister_distribution("laplace")
    assert "laplace" not in distribution_names()
