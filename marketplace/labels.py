"""A parcel's printed label: one A6 page (105 × 148 mm) drawn with reportlab in the bundled
Chinese font (marketplace/fonts.py): the label (the sub-order's number) as Code 128 and as a QR
code (what the staff's scan page and any scanner read), where it comes from and goes to (the
recipient masked), the route through the network, storage class, weight and order date.
What it says comes from services.logistics.desk.parcel_label; the words are the caller's locale
(the label route draws it in Chinese)."""

from __future__ import annotations

import io

from flask_babel import gettext
from reportlab.graphics import renderPDF
from reportlab.graphics.barcode.code128 import Code128
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A6
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from marketplace.fonts import cjk_font
from marketplace.formatting import local_time, storage_short_label
from services.logistics.desk import ParcelLabel

WIDTH, HEIGHT = A6  # 105 × 148 mm in points
MARGIN = 5 * mm
BAR_HEIGHT = 20 * mm
QR_SIZE = 36 * mm


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Lines of `text` no wider than `width`, broken between any two characters (Chinese has no
    spaces), preferring a space when there is one near the end."""
    lines: list[str] = []
    line = ""
    for char in text:
        if stringWidth(line + char, font, size) <= width:
            line += char
            continue
        cut = line.rfind(" ")
        if cut > len(line) // 2:
            lines.append(line[:cut])
            line = line[cut + 1 :] + char
        else:
            lines.append(line)
            line = char
    if line:
        lines.append(line)
    return lines or [""]


def _weight(grams: int) -> str:
    return f"{grams / 1000:.2f} kg" if grams else "—"


def render(label: ParcelLabel, url: str | None = None) -> bytes:
    """The label as a one-page PDF. `url`: what the QR code holds (default the label itself)."""
    font = cjk_font()
    out = io.BytesIO()
    pdf = Canvas(out, pagesize=A6, pageCompression=1, invariant=1)
    pdf.setTitle(gettext("Parcel label %(label)s", label=label.label))
    pdf.setAuthor(gettext("YueNong"))
    inner = WIDTH - 2 * MARGIN
    y = HEIGHT - MARGIN

    # Head: the brand, and the storage class in a box on the right (cold parcels inverted).
    storage = storage_short_label(label.storage)
    pdf.setFont(font, 10)
    pdf.drawString(MARGIN, y - 10, gettext("YueNong") + " · " + gettext("Guangdong Rural Marketplace"))
    box_w = stringWidth(storage, font, 13) + 4 * mm
    cold = label.storage.value != "ambient"
    pdf.setLineWidth(1.2)
    pdf.rect(WIDTH - MARGIN - box_w, y - 14, box_w, 16, stroke=1, fill=1 if cold else 0)
    pdf.setFillGray(1 if cold else 0)
    pdf.setFont(font, 13)
    pdf.drawCentredString(WIDTH - MARGIN - box_w / 2, y - 10, storage)
    pdf.setFillGray(0)
    y -= 20

    # The barcode, as wide as fits, and the label under it.
    bar = Code128(label.label, barHeight=BAR_HEIGHT, barWidth=0.42 * mm, quiet=False)
    if bar.width > inner:
        bar = Code128(label.label, barHeight=BAR_HEIGHT, barWidth=0.42 * mm * inner / bar.width, quiet=False)
    y -= BAR_HEIGHT
    bar.drawOn(pdf, MARGIN + (inner - bar.width) / 2, y)
    y -= 13
    pdf.setFont("Helvetica-Bold", 13)  # digits and a dash: the standard font, plain in the PDF
    pdf.drawCentredString(WIDTH / 2, y, label.label)
    y -= 6
    pdf.setLineWidth(0.8)
    pdf.line(MARGIN, y, WIDTH - MARGIN, y)

    def block(title: str, lines: list[tuple[str, float]], width: float = inner) -> None:
        nonlocal y
        y -= 12
        pdf.setFont(font, 8.5)
        pdf.drawString(MARGIN, y, title)
        for text, size in lines:
            for part in wrap(text, font, size, width):
                y -= size + 2.5
                pdf.setFont(font, size)
                pdf.drawString(MARGIN, y, part)

    to_lines = [(f"{label.recipient}  {label.phone}", 15)]
    if label.to_node is not None:
        to_lines.append((gettext("Pickup at %(node)s", node=label.to_node), 11))
    to_lines.append((label.to_place, 9))
    block(gettext("To"), to_lines)
    y -= 4
    pdf.line(MARGIN, y, WIDTH - MARGIN, y)
    block(gettext("From"), [(label.shop, 12), (f"{label.origin} · {label.origin_place}", 9)])
    y -= 4
    pdf.line(MARGIN, y, WIDTH - MARGIN, y)

    # The route, and beside the QR code the facts.
    qr_size = QR_SIZE
    stops = [name or gettext("the buyer's door") for name in label.route]
    block(gettext("Route"), [(" → ".join(stops), 9)])
    y -= 4
    facts: list[tuple[str, str]] = [
        (gettext("Storage"), storage),
        (gettext("Weight"), _weight(label.weight_g)),
        (gettext("Order date"), local_time(label.ordered_at, "yyyy-MM-dd")),
    ]
    top = y
    for name, value in facts:
        y -= 13
        pdf.setFont(font, 8.5)
        pdf.drawString(MARGIN, y, name)
        y -= 16
        pdf.setFont(font, 13)
        pdf.drawString(MARGIN, y, value)
    qr = QrCodeWidget(url or label.label, barLevel="M")
    x0, y0, x1, y1 = qr.getBounds()
    drawing = Drawing(qr_size, qr_size, transform=[qr_size / (x1 - x0), 0, 0, qr_size / (y1 - y0), 0, 0])
    drawing.add(qr)
    qr_y = max(MARGIN, min(top - qr_size, y))
    renderPDF.draw(drawing, pdf, WIDTH - MARGIN - qr_size, qr_y)
    pdf.showPage()
    pdf.save()
    return out.getvalue()
