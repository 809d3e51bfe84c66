"""The coverage table is generated from the tables and cannot drift from them."""

from pathlib import Path

from estreamer.cli import main
from estreamer.coverage import FACT_SHEET_RECORDS, render_markdown, rows
from estreamer.protocol.tables import RECORDS

ROOT = Path(__file__).resolve().parent.parent


def test_records_doc_is_current():
    committed = (ROOT / "docs" / "records.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), (
        "docs/records.md is stale: run `python -m estreamer.coverage > docs/records.md`")


def test_every_table_and_every_fact_sheet_type_has_a_row():
    table = {row[0]: row for row in rows()}
    assert set(table) == set(RECORDS) | set(FACT_SHEET_RECORDS)
    assert table[400][3] == "2/41, 2/60, 2/81, 2/85"
    assert table[71][2] == "connection"
    assert table[95][3] == "1/167, 1/159"
    assert table[10][3] == "1/139"  # new host: the host profile block
    # Every type is decoded; 104/105, the deprecated 4.10 intrusion records, say that a
    # 6.x/7.x FMC never sends them (so the emulator does not either).
    assert {t for t, row in table.items() if row[4].startswith("not covered")} == set()
    assert {t for t, row in table.items() if "never sent" in row[4]} == {104, 105}
    assert table[104][1] == "Legacy Intrusion Event (IPv4, 4.10.2.3)"


def test_the_formats_column_says_what_each_format_does():
    table = {row[0]: row for row in rows()}
    assert table[400][5] == "json, splunk (eNcore keys), cef, ecs"
    assert table[10][5] == "json, splunk (eNcore keys), cef (generic), ecs"
    assert table[112][5] == "json, splunk (eNcore keys), cef, ecs"
    assert table[520][5].startswith("json, splunk (eNcore keys), cef (generic)")
    assert "raw hex" not in table[104][5]  # decoded now, so every format maps it


def test_records_command_prints_the_table(capsys):
    assert main(["records"]) == 0
    out = capsys.readouterr().out
    assert "Intrusion Event" in out and "New VPN Login" in out
    assert out.strip().endswith("not yet.")
