import pytest

from kerashw.reports import tables
from kerashw.store import RunRow


def _row(run_id, test, val, elapsed, task="mnist"):
    final = {"test": {"top1": test, "top3": 0.99}, "val": {"top1": val}, "train": {"top1": 0.9}}
    return RunRow(run_id, task, f"label-{run_id}", {"model": "nn", "lr": 0.05}, "finished", [],
                  None, None, elapsed, 100, 100, final, {"epoch": 2, **final}, {}, 42, None)


def test_compare_rows_deltas_against_the_pinned_baseline():
    rows = [_row("aaaa0000", 0.90, 0.80, 10.0), _row("bbbb1111", 0.9512, 0.75, 12.5)]
    headers, cells = tables.compare_rows(rows, "bbbb1111")
    col = {h: i for i, h in enumerate(headers)}
    base, other = cells[1], cells[0]
    assert base[0].endswith("*") and base[col["Δ test top1"]] == "" and base[col["Δ sec"]] == ""
    assert other[col["test top1"]] == "90.00" and other[col["Δ test top1"]] == "-5.12"
    assert other[col["Δ val top1"]] == "+5.00" and other[col["Δ sec"]] == "-2.5"
    assert headers.index("test top1") < headers.index("train top1")  # test first, in view at 80 columns
    text = tables.render(headers, cells, "csv")
    assert text.splitlines()[0].startswith("run,label,status,test top1,Δ test top1")


def test_compare_rows_captcha_uses_whole_and_rejects_unknown_baseline():
    rows = [_row("aaaa0000", 0.9, 0.8, 1.0, task="captcha")]
    headers, _ = tables.compare_rows(rows, "aaaa0000")
    assert "test whole" in headers and "test top3" not in headers
    with pytest.raises(ValueError, match="zzzz"):
        tables.compare_rows(rows, "zzzz")
