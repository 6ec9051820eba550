"""The stage contract: an add-on model's state persists with the key, its outputs flow out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from engine.alerts import Alert, alert_id
from engine.boundary.schemas import Transaction
from engine.core import CustomerBook, Status
from engine.core.online import OnlineComponent
from engine.core.slots import Column
from engine.pipeline import TransactionPipeline
from engine.stages import LatestState, StageInput, StageOutput

NOW = 1_700_000_000_000


class LargeAmounts(OnlineComponent):
    name = "large"

    def columns(self) -> Sequence[Column]:
        return (Column("count", np.int64, 0),)


class LargeAmountStage:
    """Counts a customer's transactions above ``limit``; alerts on each one."""

    name = "large_amounts"

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.state = LargeAmounts()

    def components(self) -> tuple[OnlineComponent, ...]:
        return (self.state,)

    def run(self, data: StageInput) -> StageOutput:
        out = StageOutput()
        counts = self.state.state["count"]
        for i in np.flatnonzero(
            (data.step.status == Status.ACCEPTED) & (data.columns.amount > self.limit)
        ):
            slot = data.step.slots[i]
            counts[slot] += 1
            customer = data.keys[slot]
            out.alerts.append(
                Alert(
                    alert_id("large_amount", customer, "v1", data.columns.tx_ids[i]),
                    "large_amount",
                    customer,
                    int(data.columns.ts[i]),
                    "info",
                    float(data.columns.amount[i]),
                    self.limit,
                    "large_amounts",
                    "1",
                )
            )
            out.latest.append(
                LatestState(
                    f"test:large:{customer}",
                    "count",
                    int(counts[slot]),
                    {"count": str(int(counts[slot]))},
                )
            )
        return out


def txs(amounts: list[float], start: int = 0) -> list:
    return [
        Transaction(f"t{start + i}", NOW - 1000 + i, "c1", a).to_record(start + i)
        for i, a in enumerate(amounts)
    ]


def pipeline(stage: LargeAmountStage) -> TransactionPipeline:
    return TransactionPipeline(stages=[stage])


def test_stage_outputs_flow_out_of_the_pipeline() -> None:
    out = pipeline(LargeAmountStage(100)).process(txs([10, 500, 20, 700]), now_ms=NOW)
    assert [a.value for a in out.alerts] == [500.0, 700.0]
    assert [s.seq for s in out.latest] == [1, 2]


def test_stage_state_survives_a_restart_through_the_rows() -> None:
    first = pipeline(LargeAmountStage(100))
    rows = {key: row for key, _, row in first.process(txs([500, 600]), now_ms=NOW).rows}
    restarted = pipeline(LargeAmountStage(100))
    out = restarted.process(txs([800], start=2), now_ms=NOW, load_row=rows.get)
    assert out.latest[0].seq == 3


def test_replayed_records_do_not_move_stage_state() -> None:
    first = pipeline(LargeAmountStage(100))
    rows = {key: row for key, _, row in first.process(txs([500, 600]), now_ms=NOW).rows}
    restarted = pipeline(LargeAmountStage(100))
    out = restarted.process(txs([500, 600]), now_ms=NOW, load_row=rows.get)
    assert out.alerts == [] and out.latest == []


def test_a_stage_whose_state_is_not_in_the_book_is_refused() -> None:
    with pytest.raises(ValueError, match="is not in the book"):
        TransactionPipeline(CustomerBook(), stages=[LargeAmountStage(100)])
