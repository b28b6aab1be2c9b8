"""The bundled Chinese font for what the server draws itself (parcel labels as PDF; later chart
images): a subset of WenQuanYi Micro Hei (assets/fonts/README.md; `make font` regenerates it).
Registered with reportlab once per process; everything that draws Chinese asks for it here."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

FONT_PATH = Path(__file__).resolve().parent / "assets" / "fonts" / "wqy-microhei-gb2312.ttf"
FONT_NAME = "WenQuanYiMicroHei"


@lru_cache(maxsize=1)
def cjk_font() -> str:
    """Register the font with reportlab (embedded as a subset in each PDF) and return its name
    for `canvas.setFont` and paragraph styles."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    pdfmetrics.registerFont(TTFont(FONT_NAME, str(FONT_PATH)))
    return FONT_NAME
