"""The volatility-model and distribution registries: what a plug-in may and may not register."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.spec import RiskSpec, method_names
from engine.core.var.registry import (
    Distribution,
    distribution,
    distribution_names,
    register_distribution,
)
from engine.core.volatility import EWMAVolatility, VolatilityModel
from engine.core.volatility.base import Build
from engine.core.volatility.registry import build_models, register, vol_model, vol_model_names


def test_the_built_in_models_declare_what_the_book_needs() -> None:
    declared = {
        name: (vol_model(name).needs, vol_model(name).fitted, vol_model(name).estimates_nu)
        for name in vol_model_names()
    }
    assert declared == {
        "ewma": ("returns", False, False),
        "garch": ("returns", True, True),
        "gjr": ("returns", True, True),
        "har": ("rv", True, False),
        "lstm": ("returns+rv", False, False),
        "transformer": ("returns+rv", False, False),
        "lstm_r": ("returns", False, False),
        "combo": ("forecasts", False, False),
    }


def test_methods_are_every_model_with_every_registered_distribution() -> None:
    assert distribution_names() == ("normal", "t", "fhs", "cf", "mix")
    assert method_names(("ewma", "har"))[4:6] == ("ewma-mix", "har-normal")


def test_a_combination_is_built_after_the_models_it_averages() -> None:
    spec = RiskSpec(vol_models=("ewma", "combo", "gjr"), method="combo-t")
    models = build_models(Build(spec))
    assert list(models) == ["ewma", "gjr", "combo"]
    assert models["combo"].components == ("ewma", "gjr")  # type: ignore[attr-defined]


def test_a_deep_model_without_an_injected_predictor_is_refused() -> None:
    spec = RiskSpec(vol_models=("ewma", "lstm"), method="ewma-t")
    with pytest.raises(ValueError, match="'lstm' needs a predictor loader"):
        build_models(Build(spec))


def test_unknown_names_are_refused_with_the_registered_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown volatility model 'egarch'; choose from \['ewma'"
    ):
        vol_model("egarch")
    with pytest.raises(ValueError, match=r"unknown distribution 'skew-t'; choose from \['normal'"):
        distribution("skew-t")
    with pytest.raises(ValueError, match=r"combo averages the other models"):
        RiskSpec(vol_models=("ewma", "combo"), method="ewma-t")


def test_bad_registrations_are_refused() -> None:
    class NoBuilder(VolatilityModel):
        pass

    class Builds(EWMAVolatility):
        pass

    class Nameless(Distribution):
        def fill(self, *args: object) -> None: ...

    class Normal2(Distribution):
        name = "normal"

    with pytest.raises(TypeError, match="must define from_spec"):
        register("nobuilder")(NoBuilder)
    with pytest.raises(TypeError, match="is not a VolatilityModel"):
        register("x")(int)  # type: ignore[type-var]
    with pytest.raises(ValueError, match="already registered"):
        register("ewma")(Builds)
    for reserved in ("hs", "champion", "all", "a-b"):
        with pytest.raises(ValueError, match="reserved or has a '-'"):
            register(reserved)(Builds)
    with pytest.raises(ValueError, match="needs a name without '-'"):
        register_distribution(Nameless)
    with pytest.raises(ValueError, match="already registered"):
        register_distribution(Normal2)
    assert "nobuilder" not in vol_model_names() and vol_model("ewma") is EWMAVolatility
    assert distribution_names() == ("normal", "t", "fhs", "cf", "mix")


def test_a_fit_job_runs_the_estimator_of_its_model() -> None:
    from engine.core.volatility.fitting import FitJob, fit
    from engine.core.volatility.har import HAR_FALLBACK

    rv = np.random.default_rng(0).gamma(2.0, 5e-5, 300)
    result = fit(FitJob("x", "har", rv, None))
    assert result.params.shape == (vol_model("har").n_params,)  # type: ignore[attr-defined]
    assert result.fallback is HAR_FALLBACK
