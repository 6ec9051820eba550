"""``bench memory``: per-symbol figures and the column table describe the book it built."""

from __future__ import annotations

from engine.bench.memory import run


def test_the_column_table_is_the_books_allocated_state_after_the_warm_up() -> None:
    result = run(symbols=40, ticks=30, batch=400, warm_symbols=1, warm_ticks=300)
    assert result.capacity >= 40 and result.symbols == 40
    by_name = {(c.component, c.column): c for c in result.columns}
    assert result.columns_bytes_per_slot == sum(c.bytes_per_slot for c in result.columns)
    # the warm symbol got past the first GJR fit: its residual window is allocated, float32
    assert by_name[("z_gjr", "ring")].bytes_per_slot == 4 * by_name[("z_gjr", "ring")].width
    assert by_name[("z_gjr", "ring")].dtype == "float32"
    # the synthetic feed carries no realised variance: HAR's window and the rv history are not
    assert by_name[("z_har", "ring")].bytes_per_slot == 0
    assert by_name[("rv", "ring")].kind.endswith("(lazy, unallocated)")
    # the table is sorted, largest first, and the heap grew by at least the columns' bytes
    sizes = [c.bytes_per_slot for c in result.columns]
    assert sizes == sorted(sizes, reverse=True)
    assert result.heap_bytes_per_symbol > 0.9 * result.columns_bytes_per_slot
    assert result.row_bytes_per_symbol > 0
    assert "bytes per slot" in result.markdown()
