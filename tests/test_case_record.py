"""One case record: volumes.csv, report.json, the QC caption and the docs table come from CaseResult."""

import re
from pathlib import Path

from ich_infer.case_record import COLUMN_DOCS, CSV_COLUMNS, CaseResult
from ich_infer.predict import RunReport, Segmentation, _summary_line, write_tables

DOCS = Path(__file__).resolve().parents[1] / "docs" / "inference.md"


def test_docs_table_lists_exactly_the_csv_columns_in_order():
    text = DOCS.read_text()
    table = text[text.index("| column | meaning |"):]
    documented = re.findall(r"^\s*\| `([a-z0-9_]+)` \|", table, flags=re.M)
    assert documented == CSV_COLUMNS
    for name, doc in COLUMN_DOCS.items():
        assert f"| `{name}` | {doc} |" in table


def test_volumes_csv_and_report_json_come_from_the_record(tmp_path):
    seg = Segmentation(None, 0.97, 2, False, 31.4949, 29.0, "full_head")
    report = RunReport([CaseResult.segmented("a", seg, 1.234, output="a.nii.gz")], {"x": 1})
    write_tables(tmp_path, report)
    header = (tmp_path / "volumes.csv").read_text().splitlines()[0]
    assert header.split(",") == CSV_COLUMNS
    import json
    case = json.loads((tmp_path / "report.json").read_text())["cases"][0]
    assert set(CSV_COLUMNS) <= set(case)


def test_console_caption_and_csv_print_one_rounding_of_the_volume(tmp_path):
    """31.4949 mL once printed 31.50 on the console (rounded twice) and 31.49 on the montage."""
    seg = Segmentation(None, 0.97, 1, False, 31.4949, 29.0, "full_head")
    result = CaseResult.segmented("a", seg, 1.0)
    write_tables(tmp_path, RunReport([result], {}))
    row = (tmp_path / "volumes.csv").read_text().splitlines()[1].split(",")
    figure = row[CSV_COLUMNS.index("volume_ml")]
    assert figure == "31.49"
    assert f"{figure} mL" in _summary_line(result)
    assert f"{figure} mL" in result.caption()[0]
