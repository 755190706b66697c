"""The dry run (`python -m ml.landing check FILE --feed orders`): exact counts, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ml.landing.check import dry_run, main
from ml.landing.checks import mask_reason, mask_value
from ml.landing.contracts import load

ORDER_HEADER = (
    "order_id,line_number,Customer ID,ordered_at,channel,store_id,sku,quantity,unit_price,"
    "discount,currency,status,gift_note"
)


def order(number: int, **changes) -> str:
    values = {
        "order_id": f"O{number:09d}",
        "line_number": "1",
        "customer_ref": "C0000001",
        "ordered_at": "2026-11-01T10:00:00+00:00",
        "channel": "web",
        "store_id": "",
        "sku": "SKU-000001",
        "quantity": "2",
        "unit_price": "9.99",
        "discount": "0",
        "currency": "GBP",
        "status": "completed",
        "gift_note": "",
    }
    values.update(changes)
    return ",".join(values.values())


@pytest.fixture
def orders_file(tmp_path: Path) -> Path:
    lines = [
        ORDER_HEADER,
        order(1),
        order(2, quantity="-3"),
        order(3, quantity="0"),
        order(4, status="shipped"),
        order(5, quantity="-1", status="lost"),
        order(6, customer_ref="ann@@mail.com"),
        order(7, customer_ref="nobody"),
        order(8),
        order(1),  # the same key as line 2
        "O000000009,1,C0000001",
        order(10, customer_ref=" Ann.Lee@Mail.com "),
    ]
    path = tmp_path / "orders_2026-11.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_dry_run_counts_what_would_land_and_why_the_rest_would_not(orders_file):
    result = dry_run(orders_file, _orders_with_alias())
    assert (result.rows_read, result.would_load, result.quarantined, result.duplicates) == (
        11,
        3,
        7,
        1,
    )
    assert result.reasons == {
        "quantity is below 1": 3,
        "status is not one of completed, refunded, cancelled": 2,
        "customer_ref is not a valid email address": 1,
        "customer_ref is not an email, a crm id (C + 7 digits) or a loyalty id (L + 8 digits)": 1,
        "has the wrong number of fields, expected 13 as in the header": 1,
    }
    assert result.examples["quantity is below 1"] == [
        "row 3: quantity -3 is below 1",
        "row 4: quantity 0 is below 1",
        "row 6: quantity -1 is below 1; status 'lost' is not one of completed, refunded, cancelled",
    ]
    assert result.examples["customer_ref is not a valid email address"] == [
        "row 7: customer_ref 'an*@@****.*om' is not a valid email address (The part after the "
        "@-sign contains invalid characters: '@'.)"
    ]
    assert result.by_alias == {"customer_ref": "Customer ID"}
    assert result.ignored == ["gift_note"]
    assert result.exit_status == 0


def _orders_with_alias():
    from dataclasses import replace

    orders = load()["orders"]
    return replace(orders, aliases={"customer_ref": ("customer id",)})


def test_the_report_prints_counts_masked_examples_and_columns(orders_file, tmp_path, capsys):
    (tmp_path / "feeds.local.yml").write_text(
        "feeds: {orders: {aliases: {customer_ref: [Customer ID]}}}\n", encoding="utf-8"
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    status = main(
        [str(orders_file), "--feed", "orders", "--overrides", str(tmp_path / "feeds.local.yml")]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[:6] == [
        "orders_2026-11.csv against the contract of feed `orders` (orders.order_lines):",
        "  11 rows read",
        "  3 would load",
        "  7 would be quarantined:",
        "         3  quantity is below 1",
        "              row 3: quantity -3 is below 1",
    ]
    assert "  1 would be duplicates within the file (key order_id, line_number)" in out
    assert "  matched by another name: customer_ref <- 'Customer ID'" in out
    assert "  ignored columns: gift_note" in out
    assert "ann@@mail.com" not in out and "nobody" not in out and "no***dy" not in out
    assert "customer_ref 'no**dy' is not an email" in out
    # nothing written: no warehouse, no spill folder, nothing new beside the file
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not Path(".tmp").exists() or Path(".tmp").stat().st_mtime < orders_file.stat().st_mtime


def test_a_file_that_would_be_quarantined_whole_exits_1_and_names_the_missing_column(
    tmp_path, capsys
):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,line_number\nO000000001,1\n", encoding="utf-8")
    assert main([str(path), "--feed", "orders"]) == 1
    out = capsys.readouterr().out
    assert "  the whole file would be quarantined: it has a header without the column(s) " in out
    assert "  missing contract columns: customer_ref, ordered_at, channel, store_id, sku," in out
    assert "aliases: {customer_ref: ['<name in your file>']}" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.csv", "--feed", "orders"], "error: missing.csv: no such file"),
        (["{file}", "--feed", "invoices"], "error: no feed 'invoices'; the feeds are crm, orders,"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(orders_file, argv, message, capsys):
    argv = [a.replace("{file}", str(orders_file)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message)
    assert "Traceback" not in err


def test_a_broken_overrides_file_is_a_usage_error(orders_file, tmp_path, capsys):
    broken = tmp_path / "mine.yml"
    broken.write_text("feeds:\n  orders:\n    key: [order_id]\n", encoding="utf-8")
    assert main([str(orders_file), "--feed", "orders", "--overrides", str(broken)]) == 2
    assert "cannot set ['key']" in capsys.readouterr().err


def test_a_missing_argument_is_argparses_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--feed", "orders"])
    assert exit_.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_landing_command_dispatches_to_the_dry_run(orders_file, capsys):
    from ml.landing.__main__ import main as landing

    assert landing(["check", str(orders_file), "--feed", "orders"]) == 1  # no alias: no column
    assert "missing contract columns: customer_ref" in capsys.readouterr().out
    assert landing(["nonsense"]) == 2


def test_personal_values_are_masked_keeping_two_characters_at_each_end():
    assert mask_value("0161 496 0117") == "01** *** **17"
    assert mask_value("ann@x.com") == "an*@*.*om"
    assert mask_value("Bob") == "***"
    crm = load()["crm"]
    assert mask_reason(
        "phone '0161 496 0117' is not a valid phone number in GB; gender 'Q' is not one of "
        "F, M, X, U; birth_date 1890-01-01 is below 1900-01-01",
        crm,
    ) == (
        "phone '01** *** **17' is not a valid phone number in GB; gender 'Q' is not one of "
        "F, M, X, U; birth_date 18**-**-01 is below 1900-01-01"
    )


def test_nothing_is_written_to_the_working_folder(orders_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dry_run(orders_file, _orders_with_alias())
    assert sorted(os.listdir(tmp_path)) == ["orders_2026-11.csv"]


def test_the_land_command_lands_and_says_what_it_did(orders_file, tmp_path, capsys):
    from ml.landing.__main__ import main as landing

    (tmp_path / "feeds.local.yml").write_text(
        "feeds: {orders: {aliases: {customer_ref: [Customer ID]}}}\n", encoding="utf-8"
    )
    (tmp_path / "landing" / "orders").mkdir(parents=True)
    orders_file.rename(tmp_path / "landing" / "orders" / orders_file.name)
    where = ["--landing", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "w.duckdb")]
    assert landing(["land", "--feed", "invoices", *where]) == 2
    assert "error: no feed 'invoices'" in capsys.readouterr().err
    assert landing(["land", "--feed", "orders", *where]) == 0
    assert capsys.readouterr().out == (
        "orders       files 1 landed, 0 quarantined, 0 skipped; rows 3 loaded, 7 quarantined, "
        "1 duplicate, 0 erased\n"
    )
