"""The files staff download (the bank's payout batches, campaign reports): CSV and Excel.

CSV is UTF-8 with a BOM, so that Excel opens the Chinese right; Excel workbooks are written with
openpyxl (imported when a workbook is made, not on every request). Text a spreadsheet could run
as a formula (CSV injection: a leading = + - @) is quoted in CSV and stored as text in a workbook.
Amounts are exact yuan from integer fen (`yuan`), never floats.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpyxl.workbook import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def yuan(fen: int) -> Decimal:
    """Exact yuan with two decimals from integer fen (12345 → Decimal('123.45'))."""
    return Decimal(int(fen)).scaleb(-2)


def yuan_text(fen: int) -> str:
    """Yuan as a file writes it: "123.45"."""
    return f"{yuan(fen):.2f}"


def cell_text(text: str) -> str:
    """Text a spreadsheet will not run as a formula (CSV injection): a leading = + - @ is quoted."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as CSV in UTF-8 with a BOM. Strings go through `cell_text`; numbers as they are."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([cell_text(v) if isinstance(v, str) else v for v in row])
    return out.getvalue().encode("utf-8-sig")


def new_workbook(title: str) -> tuple[Workbook, Worksheet]:
    """A workbook and its first sheet, named `title`."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    return wb, ws


def text_cell(ws: Worksheet, row: int, column: int, value: str) -> Any:
    """A text cell that is never a formula, even when it starts with '='."""
    cell = ws.cell(row=row, column=column)
    cell.value = value
    cell.data_type = "s"
    cell.number_format = "@"
    return cell


def money_cell(ws: Worksheet, row: int, column: int, fen: int, *, bold: bool = False) -> Any:
    """An amount in yuan, as a number with two decimals."""
    cell = ws.cell(row=row, column=column, value=yuan(fen))
    cell.number_format = "0.00"
    if bold:
        bold_cell(cell)
    return cell


def bold_cell(cell: Any) -> Any:
    from openpyxl.styles import Font

    cell.font = Font(bold=True)
    return cell


def header_row(ws: Worksheet, row: int, header: Sequence[str]) -> None:
    """A bold header row."""
    for column, title in enumerate(header, start=1):
        bold_cell(text_cell(ws, row, column, title))


def set_widths(ws: Worksheet, widths: Sequence[int]) -> None:
    from openpyxl.utils import get_column_letter

    for column, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(column)].width = width


def workbook_bytes(wb: Workbook) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
