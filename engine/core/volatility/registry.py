"""Volatility models by name: the one place the price book and the spec look them up.

A model is one class: a :class:`~engine.core.volatility.base.VolatilityModel` that
declares what it needs and builds itself from the spec, registered under one or more
names::

    @register("mine")
    class MyVolatility(VolatilityModel):
        needs = "returns"

        @classmethod
        def from_spec(cls, name, build):
            return cls()
        ...

After that, ``RiskSpec(vol_models=("mine",), method="mine-t")`` validates and the book
runs it with every distribution of :mod:`engine.core.var.registry`. The built-in models
register when :mod:`engine.core.volatility` is imported; the names are listed in
registration order (the order of the CLI's choices and of error messages).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from engine.core.volatility.base import Build, Needs, VolatilityModel

M = TypeVar("M", bound=type[VolatilityModel])

_MODELS: dict[str, type[VolatilityModel]] = {}


def register(*names: str) -> Callable[[M], M]:
    """Class decorator: register a volatility model under ``names`` (unique)."""
    if not names:
        raise ValueError("register a volatility model under at least one name")

    def decorate(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, VolatilityModel)):
            raise TypeError(f"{cls!r} is not a VolatilityModel")
        if cls.from_spec.__func__ is VolatilityModel.from_spec.__func__:  # type: ignore[attr-defined]
            raise TypeError(f"{cls.__name__} must define from_spec(name, build)")
        for name in names:
            if "-" in name or name in ("hs", "all", "champion"):
                raise ValueError(f"volatility model name {name!r} is reserved or has a '-'")
            if name in _MODELS and _MODELS[name] is not cls:
                raise ValueError(f"volatility model {name!r} is already registered")
        for name in names:
            _MODELS[name] = cls
        return cls

    return decorate


def unregister(name: str) -> None:
    """Forget a registered name (for tests that register a model of their own)."""
    _MODELS.pop(name, None)


def vol_model_names(needs: tuple[Needs, ...] | None = None) -> tuple[str, ...]:
    """The registered names, in registration order; only those whose class needs one of ``needs``.

    >>> vol_model_names()
    ('ewma', 'garch', 'gjr', 'har', 'lstm', 'transformer', 'lstm_r', 'combo')
    >>> vol_model_names(needs=("rv", "returns+rv"))
    ('har', 'lstm', 'transformer')
    """
    return tuple(n for n, cls in _MODELS.items() if needs is None or cls.needs in needs)


def vol_model(name: str) -> type[VolatilityModel]:
    """The class registered as ``name``; ``ValueError`` listing the registered names otherwise."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown volatility model {name!r}; choose from {list(vol_model_names())}"
        ) from None


def build_models(build: Build) -> dict[str, VolatilityModel]:
    """Every model of ``build.spec``, by name: in the spec's order, the models that need
    other models' forecasts last (they are given the ones before them)."""
    names = build.spec.vol_models
    models: dict[str, VolatilityModel] = {}
    for combining in (False, True):
        for name in names:
            cls = vol_model(name)
            if (cls.needs == "forecasts") == combining:
                context = Build(build.spec, build.predictors, dict(models))
                models[name] = cls.from_spec(name, context)
    return models
