"""QR codes for pages: drawn here as inline SVG (no image request, no Pillow). The cart's and the
proxy order's payment codes and the parcel pages use this one helper."""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from markupsafe import Markup


def qr_svg(text: str) -> Markup:
    """The QR code of `text` as inline SVG."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return Markup(image.to_string(encoding="unicode"))  # noqa: S704 (made by qrcode, no user text)
