"""What every benchmark result offers the ``riskstream bench`` commands."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any


class BenchResult:
    """Base of a benchmark's result dataclass: its fields are the figures it measured.

    A subclass is a ``@dataclass`` and writes :meth:`markdown`, the table the command
    prints; :meth:`to_dict` is what ``--out`` saves as JSON.
    """

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, nested dataclasses as dicts (``dataclasses.asdict``)."""
        return asdict(self)  # type: ignore[call-overload]

    def markdown(self) -> str:
        """The result as the Markdown the command prints."""
        raise NotImplementedError
