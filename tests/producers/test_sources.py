"""Real data sources: the one-minute S&P 500 bars, the fraud-handbook file, price CSVs."""

from __future__ import annotations

import gzip
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.boundary.timeutil import parse_ts
from engine.errors import InputError
from producers.sources import (
    frame_to_ticks,
    fraud_handbook,
    read_price_csv,
    sp500_1min,
    ticks_from_frame,
)


def _ms(frame: pd.DataFrame) -> list[int]:
    return frame["timestamp"].to_numpy(dtype="datetime64[ms]").astype("int64").tolist()


# --- one-minute S&P 500 -------------------------------------------------------------------


def test_sp500_1min_is_converted_from_new_york_time_to_utc() -> None:
    frame = sp500_1min()
    assert len(frame) == 1563
    assert list(frame.columns) == ["timestamp", "symbol", "price", "volume"]
    # 11/5/2019 9:30 New York (EST, UTC-5 after the 2019-11-03 change) is 14:30 UTC.
    assert _ms(frame)[0] == parse_ts("2019-11-05T14:30:00Z")
    assert _ms(frame)[-1] == parse_ts("2019-11-08T20:59:00Z")
    assert frame["price"].iloc[0] == pytest.approx(3080.49)  # Close, not Open (3080.8)
    assert (frame["symbol"] == "SPX").all()
    assert frame["timestamp"].is_monotonic_increasing


def test_sp500_1min_conversion_follows_daylight_saving(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        "Date,Open,Close,High,Low,Volume\n"
        "7/1/2019 9:30,1,2963.5,1,1,10\n"  # EDT, UTC-4
        "12/2/2019 9:30,1,3143.9,1,1,0\n"  # EST, UTC-5
    )
    frame = sp500_1min(path)
    assert _ms(frame) == [parse_ts("2019-07-01T13:30:00Z"), parse_ts("2019-12-02T14:30:00Z")]
    assert frame["volume"].tolist() == [10.0, 0.0]
    ticks = list(ticks_from_frame(frame))
    assert ticks[0].volume == 10.0 and ticks[0].price == 2963.5


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Date,Open,High,Low,Volume\n11/5/2019 9:30,1,1,1,0\n", "missing column.*Close"),
        ("Date,Open,Close,High,Low,Volume\n2019-11-05 09:30,1,2,1,1,0\n", "'Date'.*row 1"),
        ("Date,Open,Close,High,Low,Volume\n11/5/2019 9:30,1,x,1,1,0\n", "'Close'.*'x'.*row 1"),
    ],
)
def test_sp500_1min_bad_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        sp500_1min(path)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        sp500_1min(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="not found"):
        read_price_csv(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="not found"):
        next(fraud_handbook(tmp_path / "nope.csv.gz"))


# --- generic price CSV --------------------------------------------------------------------


def test_long_csv(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "timestamp,symbol,price,volume\n"
        "2024-01-02T00:00:01Z,B,20.5,3\n"
        "2024-01-02 00:00:00,A,10.0,\n"  # no offset: UTC; empty volume allowed
        "2024-01-02T01:00:01+01:00,A,10.5,1\n"  # 00:00:01 UTC, after B's row in the file
    )
    frame = read_price_csv(path)
    assert frame["symbol"].tolist() == ["A", "B", "A"]
    assert _ms(frame) == [
        parse_ts("2024-01-02T00:00:00Z"),
        parse_ts("2024-01-02T00:00:01Z"),
        parse_ts("2024-01-02T00:00:01Z"),
    ]
    assert frame["price"].tolist() == [10.0, 20.5, 10.5]
    ticks = list(ticks_from_frame(frame))
    assert [t.volume for t in ticks] == [None, 3.0, 1.0]
    assert [t.key for t in ticks] == [b"A", b"B", b"A"]


def test_wide_csv_with_gaps_and_epoch_ms(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("timestamp,SPX,NDX\n1000,100.0,\n2000,101.0,200.0\n0,99.0,198.0\n")
    frame = read_price_csv(path)
    assert list(zip(_ms(frame), frame["symbol"], frame["price"], strict=True)) == [
        (0, "SPX", 99.0),
        (0, "NDX", 198.0),
        (1000, "SPX", 100.0),
        (2000, "SPX", 101.0),
        (2000, "NDX", 200.0),
    ]
    assert [t.ts for t in frame_to_ticks(frame)] == [0, 0, 1000, 2000, 2000]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("time,price\n2024-01-01,1\n", "no 'timestamp' column"),
        ("timestamp,symbol\n2024-01-01,A\n", "both 'symbol' and 'price'"),
        ("timestamp\n2024-01-01\n", "no price columns"),
        ("timestamp,symbol,price\n2024-01-01,A,1\nsoon,A,2\n", "'timestamp'.*'soon'.*row 2"),
        ("timestamp,symbol,price\n2024-01-01,A,-1\n", "'price'.*row 1.*positive"),
        ("timestamp,symbol,price\n2024-01-01,A,\n", "'price' is empty in row 1"),
        ("timestamp,symbol,price\n2024-01-01,,1\n", "'symbol' is empty in row 1"),
        ("timestamp,SPX\n2024-01-01,1\n2024-01-02,abc\n", "'SPX'.*'abc'.*row 2"),
        ("timestamp,SPX\n2024-01-01,inf\n", "'SPX'.*row 1.*finite"),
    ],
)
def test_bad_price_csv(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        read_price_csv(path)


# --- fraud handbook -----------------------------------------------------------------------


def test_fraud_handbook_first_rows() -> None:
    first = list(islice(fraud_handbook(), 3))
    # TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT of the file's first rows
    assert [(t.tx_id, t.ts, t.customer_id, t.terminal_id, t.amount) for t in first] == [
        ("0", parse_ts("2018-04-01T00:00:31Z"), "596", "3156", 57.16),
        ("1", parse_ts("2018-04-01T00:02:10Z"), "4961", "3412", 81.51),
        ("2", parse_ts("2018-04-01T00:07:56Z"), "2", "1365", 146.0),
    ]
    assert all(t.features == {} for t in first)
    assert first[0].key == b"596"


def test_fraud_handbook_labels_only_when_asked() -> None:
    tx = next(fraud_handbook(labels=True))
    assert tx.features == {"tx_fraud": 0, "tx_fraud_scenario": 0}
    assert tx.to_dict()["tx_fraud"] == 0


def _fraud_file(path: Path, rows: list[str]) -> Path:
    header = (
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,"
        "TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO\n"
    )
    with gzip.open(path, "wt") as handle:
        handle.write(header + "".join(r + "\n" for r in rows))
    return path


def test_fraud_handbook_streams_in_chunks(tmp_path: Path) -> None:
    good = [f"{i},2018-04-01 00:00:0{i},{i % 2},7,{i}.5,{i},0,{i % 2},{i % 2}" for i in range(5)]
    path = _fraud_file(tmp_path / "f.csv.gz", [*good, "5,not a date,1,7,1.0,5,0,0,0"])
    stream = fraud_handbook(path, labels=True, chunksize=2)
    # The chunks before the bad row come out before the bad row is even read.
    head = list(islice(stream, 4))
    assert [t.tx_id for t in head] == ["0", "1", "2", "3"]
    assert [t.features["tx_fraud"] for t in head] == [0, 1, 0, 1]
    assert [t.amount for t in head] == [0.5, 1.5, 2.5, 3.5]
    # A chunk is checked whole before its rows come out: row 5 shares the bad row's chunk.
    with pytest.raises(InputError, match=r"'TX_DATETIME'.*'not a date'.*row 6"):
        next(stream)


def test_fraud_handbook_chunk_size_does_not_change_the_stream(tmp_path: Path) -> None:
    rows = [f"{i},2018-04-01 00:00:{i:02d},{i % 3},{i},{i}.25,{i},0,0,0" for i in range(11)]
    path = _fraud_file(tmp_path / "f.csv.gz", rows)
    assert list(fraud_handbook(path, chunksize=3)) == list(fraud_handbook(path, chunksize=100))


def test_fraud_handbook_bad_columns_and_amounts(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID\n0,2018-04-01 00:00:00,1\n")
    with pytest.raises(InputError, match=r"missing column.*TERMINAL_ID"):
        next(fraud_handbook(path))
    path = _fraud_file(tmp_path / "neg.csv.gz", ["0,2018-04-01 00:00:00,1,2,-3.0,0,0,0,0"])
    with pytest.raises(InputError, match=r"'TX_AMOUNT'.*row 1"):
        next(fraud_handbook(path))


def test_wide_csv_keeps_column_order_within_a_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    names = [f"S{i}" for i in range(5)][::-1]
    values = np.arange(1, 6, dtype=float)
    path.write_text(
        "timestamp," + ",".join(names) + "\n2024-01-01," + ",".join(map(str, values)) + "\n"
    )
    assert read_price_csv(path)["symbol"].tolist() == names


def test_fraud_handbook_messages_show_cells_as_written_not_numpy_reprs(tmp_path: Path) -> None:
    path = _fraud_file(tmp_path / "neg.csv.gz", ["0,2018-04-01 00:00:00,1,2,-3.0,0,0,0,0"])
    with pytest.raises(InputError) as caught:
        next(fraud_handbook(path))
    assert str(caught.value) == (
        f"{path}: column 'TX_AMOUNT' has -3.0 in row 1, expected a finite amount >= 0"
    )
