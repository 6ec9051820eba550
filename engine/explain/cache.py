"""Explanations, their Redis keys, and the cache.

Keys (all with a TTL, ``RISKSTREAM_SHAP_CACHE_TTL_S``):

``riskstream:shap:<model>:<version>:<digest>``
    the attributions of one feature vector under one model version (JSON: ``base``,
    ``shap`` in the model's input order, ``output``, ``units``). ``digest`` is
    :func:`vector_digest` of the encoded float64 vector, so the same inputs to the same
    model version always find the same entry, and a new model version never reads an old
    one's.
``riskstream:shap:alert:<alert_id>``
    the full :class:`Explanation` behind one alert, what ``riskstream explain ALERT_ID``
    plots: JSON ``{"model", "model_version", "features", "values", "entry"}`` where
    ``entry`` is the cache entry above, embedded byte for byte (:func:`alert_record`), so
    Redis itself can write the record from a cached entry (:data:`LOOKUP_SCRIPT`).
``riskstream:shap:importance:<model>:<version>``
    hash feature -> mean |SHAP| over the model's test split (global importance), written
    once per model version (no TTL).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from engine.alerts import Attribution

SHAP_KEY = "riskstream:shap:{model}:{version}:{digest}"
ALERT_KEY = "riskstream:shap:alert:{alert_id}"
IMPORTANCE_KEY = "riskstream:shap:importance:{model}:{version}"


def vector_digest(vector: np.ndarray | Sequence[float]) -> str:
    """32 hex digits naming a feature vector: BLAKE2b-128 of its little-endian float64 bytes.

    Stable across processes, machines and NumPy versions; every NaN hashes alike, and
    ``-0.0`` like ``0.0`` (the model cannot tell them apart either).

    >>> vector_digest([20000.0, 2.0, float("nan"), -0.0])
    '3401d85855465abf612276c15901934f'
    >>> vector_digest(np.array([20000.0, 2.0, np.nan, 0.0])) == vector_digest([20000.0, 2.0, float("nan"), -0.0])
    True
    """
    x = np.array(vector, dtype="<f8").reshape(-1)
    x += 0.0  # -0.0 -> 0.0
    x[np.isnan(x)] = np.nan  # one canonical NaN bit pattern
    return hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest()


def shap_key(model: str, version: str, vector: np.ndarray) -> str:
    return SHAP_KEY.format(model=model, version=version, digest=vector_digest(vector))


def record_prefix(
    model: str,
    version: str,
    features: Sequence[str],
    values: Sequence[float | str | None],
) -> bytes:
    """The start of an alert's record, up to its ``entry``: ``prefix + entry + b"}"``."""
    head = orjson.dumps(
        {
            "model": model,
            "model_version": version,
            "features": list(features),
            "values": [_plain(v) for v in values],
        }
    )
    return head[:-1] + b',"entry":'


def alert_record(prefix: bytes, entry: bytes) -> bytes:
    """An alert's explanation record from its :func:`record_prefix` and cache entry."""
    return prefix + entry + b"}"


LOOKUP_SCRIPT = """
-- KEYS: cache key 1, alert record key 1, cache key 2, alert record key 2, ...
-- ARGV: TTL (s), record prefix 1, record prefix 2, ...
-- Returns each cache entry (nil when absent); for each one present, writes the alert's
-- record (prefix .. entry .. '}') with the TTL: a cache hit costs one round trip.
local out = {}
for i = 1, #KEYS, 2 do
  local entry = redis.call('GET', KEYS[i])
  if entry then
    redis.call('SET', KEYS[i + 1], ARGV[(i + 1) / 2 + 1] .. entry .. '}', 'EX', ARGV[1])
    out[#out + 1] = entry
  else
    out[#out + 1] = false
  end
end
return out
"""


@dataclass(frozen=True, slots=True)
class Explanation:
    """SHAP attributions of one model output, with what is needed to plot and read them.

    ``base + sum(shap) == output`` (within the additivity tolerance), all in ``units``
    (log-odds for the credit model). ``values`` are the readable feature values
    (numbers, category text, ``None`` for missing).
    """

    model: str
    model_version: str
    features: tuple[str, ...]
    values: tuple[float | str | None, ...]
    shap: tuple[float, ...]
    base: float
    output: float
    units: str

    def top(self, k: int) -> tuple[Attribution, ...]:
        """The ``k`` largest attributions by absolute value, largest first (ties: input order)."""
        order = sorted(range(len(self.shap)), key=lambda i: (-abs(self.shap[i]), i))[:k]
        return tuple(
            Attribution(self.features[i], _plain(self.values[i]), self.shap[i]) for i in order
        )

    def cache_entry(self) -> bytes:
        return orjson.dumps(
            {"base": self.base, "shap": list(self.shap), "output": self.output, "units": self.units}
        )

    def to_json(self) -> bytes:
        """The alert record (module docstring); :meth:`from_json` reads it back."""
        prefix = record_prefix(self.model, self.model_version, self.features, self.values)
        return alert_record(prefix, self.cache_entry())

    @classmethod
    def from_json(cls, data: bytes | str) -> Explanation:
        doc = orjson.loads(data)
        if "entry" in doc:
            entry = doc.pop("entry")
            doc |= {"units": "raw", **entry}
        return cls(
            model=doc["model"],
            model_version=doc["model_version"],
            features=tuple(doc["features"]),
            values=tuple(doc["values"]),
            shap=tuple(float(v) for v in doc["shap"]),
            base=float(doc["base"]),
            output=float(doc["output"]),
            units=doc["units"],
        )

    @classmethod
    def from_cache_entry(
        cls,
        data: bytes | str,
        *,
        model: str,
        model_version: str,
        features: Sequence[str],
        values: Sequence[float | str | None],
    ) -> Explanation:
        doc = orjson.loads(data)
        return cls(
            model,
            model_version,
            tuple(features),
            tuple(values),
            tuple(float(v) for v in doc["shap"]),
            float(doc["base"]),
            float(doc["output"]),
            doc.get("units", "raw"),
        )


def _plain(value: Any) -> float | str | None:
    """JSON-safe feature value: NaN -> None, NumPy scalars -> Python."""
    if value is None or isinstance(value, str):
        return value
    x = float(value)
    return None if math.isnan(x) else x
