"""Sample product photos for the demo data, drawn with Pillow at seed time: a simple coloured
shape for the kind of product on a light background of the same colour. No text (the server has
no CJK font), nothing downloaded, a few kilobytes each once the media service re-encodes them.
"""

from __future__ import annotations

import hashlib
from io import BytesIO

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 640, 480
LEAF = (67, 140, 60)
DARK = (70, 60, 50)

Color = tuple[int, int, int]


def _rgb(hex_color: str) -> Color:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _mix(a: Color, b: Color, t: float) -> Color:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _shade(c: Color, t: float) -> Color:
    return _mix(c, (0, 0, 0), t)


def _light(c: Color, t: float) -> Color:
    return _mix(c, (255, 255, 255), t)


def _leaf(d: ImageDraw.ImageDraw, x: int, y: int, w: int, h: int, color: Color = LEAF) -> None:
    d.polygon([(x, y + h // 2), (x + w // 2, y), (x + w, y + h // 2), (x + w // 2, y + h)], fill=color)


def _fruit(d: ImageDraw.ImageDraw, c: Color, r: int) -> None:
    cx, cy = WIDTH // 2, HEIGHT // 2 + 20
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c)
    d.ellipse((cx - r // 2, cy - r // 2 - 20, cx - r // 6, cy - r // 6 - 20), fill=_light(c, 0.35))
    d.rectangle((cx - 4, cy - r - 24, cx + 4, cy - r + 6), fill=DARK)
    _leaf(d, cx + 2, cy - r - 40, 90, 44)


def _cluster(d: ImageDraw.ImageDraw, c: Color, seed: int) -> None:
    spots = [(250, 250), (330, 240), (290, 310), (370, 310), (210, 320), (330, 380)]
    for i, (x, y) in enumerate(spots):
        x += (seed >> i) % 17 - 8
        d.ellipse((x - 48, y - 48, x + 48, y + 48), fill=_shade(c, 0.08 * (i % 3)))
        d.ellipse((x - 26, y - 30, x - 8, y - 12), fill=_light(c, 0.3))
    _leaf(d, 250, 120, 150, 70)
    _leaf(d, 360, 150, 120, 56, _shade(LEAF, 0.2))


def _pineapple(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.ellipse((220, 180, 420, 440), fill=c)
    for y in range(205, 430, 34):
        d.line((235, y, 405, y + 30), fill=_shade(c, 0.25), width=4)
        d.line((235, y + 30, 405, y), fill=_shade(c, 0.25), width=4)
    for dx in (-60, -30, 0, 30, 60):
        d.polygon([(320 + dx - 18, 190), (320 + dx * 2, 60), (320 + dx + 18, 190)], fill=LEAF)


def _greens(d: ImageDraw.ImageDraw, c: Color) -> None:
    for i, x in enumerate(range(190, 460, 54)):
        d.rectangle((x - 5, 240, x + 5, 440), fill=_light(c, 0.5))
        d.ellipse((x - 50, 90 + (i % 2) * 30, x + 50, 280 + (i % 2) * 30), fill=_shade(c, 0.06 * (i % 3)))


def _tubers(d: ImageDraw.ImageDraw, c: Color) -> None:
    for i, (x, y) in enumerate([(170, 200), (300, 250), (210, 320)]):
        d.ellipse((x, y, x + 230, y + 100), fill=_shade(c, 0.1 * i))
        d.line((x + 40, y + 50, x + 190, y + 50), fill=_light(c, 0.25), width=3)


def _strips(d: ImageDraw.ImageDraw, c: Color) -> None:
    for i in range(6):
        x = 170 + i * 50
        d.rounded_rectangle(
            (x, 120 + (i % 2) * 30, x + 36, 400 - (i % 3) * 20), 16, fill=_shade(c, 0.07 * (i % 3))
        )


def _poultry(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.ellipse((170, 200, 450, 410), fill=c)
    d.ellipse((390, 130, 480, 220), fill=c)
    d.polygon([(478, 170), (520, 180), (478, 192)], fill=(230, 150, 40))
    d.polygon([(410, 132), (430, 100), (450, 132)], fill=(200, 40, 40))
    d.ellipse((440, 158, 452, 170), fill=DARK)
    d.pieslice((180, 220, 360, 400), 150, 250, fill=_shade(c, 0.15))


def _meat(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.rounded_rectangle((160, 170, 480, 380), 70, fill=c)
    d.rounded_rectangle((200, 200, 440, 350), 50, fill=_light(c, 0.25))
    d.ellipse((300, 240, 350, 290), fill=_light(c, 0.7))


def _eggs(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.rounded_rectangle((130, 300, 510, 420), 20, fill=(190, 160, 120))
    for x in (170, 280, 390):
        d.ellipse((x, 170, x + 90, 330), fill=_shade(c, 0.05))
        d.ellipse((x + 18, 195, x + 40, 230), fill=_light(c, 0.5))


def _tea(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.rounded_rectangle((170, 230, 400, 420), 40, fill=(245, 245, 240))
    d.ellipse((170, 205, 400, 260), fill=c)
    d.arc((380, 260, 460, 360), 270, 90, fill=(245, 245, 240), width=16)
    _leaf(d, 380, 110, 150, 60, LEAF)
    _leaf(d, 300, 90, 110, 48, _shade(LEAF, 0.2))


def _peel(d: ImageDraw.ImageDraw, c: Color) -> None:
    for i, (x, y) in enumerate([(150, 150), (300, 130), (220, 270), (360, 260)]):
        d.pieslice((x, y, x + 150, y + 150), 20 + 40 * i, 290 + 20 * i, fill=_shade(c, 0.08 * i))
        d.pieslice((x + 30, y + 30, x + 120, y + 120), 20 + 40 * i, 290 + 20 * i, fill=_light(c, 0.35))


def _sausages(d: ImageDraw.ImageDraw, c: Color) -> None:
    for i in range(4):
        y = 150 + i * 60
        d.rounded_rectangle((150 + i * 10, y, 490 - i * 10, y + 44), 22, fill=_shade(c, 0.08 * (i % 2)))
        d.ellipse((220 + i * 20, y + 12, 236 + i * 20, y + 28), fill=_light(c, 0.6))


def _jar(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.rounded_rectangle((220, 160, 420, 420), 40, fill=c)
    d.rectangle((240, 120, 400, 165), fill=_shade(c, 0.35))
    d.rounded_rectangle((250, 250, 390, 330), 10, fill=_light(c, 0.6))


def _sack(d: ImageDraw.ImageDraw, c: Color, dots: bool) -> None:
    d.polygon([(220, 120), (420, 120), (460, 420), (180, 420)], fill=c)
    d.rectangle((220, 110, 420, 140), fill=_shade(c, 0.25))
    d.rounded_rectangle((250, 220, 390, 330), 12, fill=_light(c, 0.55))
    if dots:
        for i in range(12):
            x, y = 265 + (i % 4) * 35, 235 + (i // 4) * 32
            d.ellipse((x, y, x + 16, y + 9), fill=_shade(c, 0.2))


def _bottle(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.rounded_rectangle((240, 180, 400, 440), 30, fill=c)
    d.polygon([(270, 180), (295, 110), (345, 110), (370, 180)], fill=c)
    d.rectangle((295, 80, 345, 112), fill=(200, 40, 40))
    d.rounded_rectangle((260, 260, 380, 360), 10, fill=_light(c, 0.6))


def _tool(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.line((180, 420, 440, 120), fill=(150, 100, 60), width=22)
    d.polygon([(400, 120), (500, 110), (520, 190), (430, 170)], fill=c)


def _appliance(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.rounded_rectangle((180, 170, 460, 420), 60, fill=c)
    d.ellipse((180, 130, 460, 230), fill=_shade(c, 0.12))
    d.rounded_rectangle((280, 300, 360, 350), 10, fill=(60, 130, 200))


def _fan(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.ellipse((200, 80, 440, 320), outline=_shade(c, 0.4), width=10, fill=_light(c, 0.4))
    for start in (0, 72, 144, 216, 288):
        d.pieslice((230, 110, 410, 290), start, start + 40, fill=c)
    d.rectangle((312, 320, 328, 420), fill=_shade(c, 0.4))
    d.ellipse((250, 405, 390, 440), fill=_shade(c, 0.4))


def _box(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.polygon([(200, 170), (380, 140), (460, 190), (280, 220)], fill=_light(c, 0.3))
    d.polygon([(200, 170), (280, 220), (280, 420), (200, 370)], fill=_shade(c, 0.2))
    d.polygon([(280, 220), (460, 190), (460, 390), (280, 420)], fill=c)


def _wok(d: ImageDraw.ImageDraw, c: Color) -> None:
    d.pieslice((150, 120, 450, 400), 0, 180, fill=c)
    d.rectangle((440, 250, 540, 275), fill=DARK)


SHAPES = {
    "citrus": lambda d, c, s: _fruit(d, c, 140),
    "orchard-fruit": lambda d, c, s: _fruit(d, c, 120),
    "lychee-longan": _cluster,
    "tropical-fruit": lambda d, c, s: _pineapple(d, c),
    "leafy-greens": lambda d, c, s: _greens(d, c),
    "roots-tubers": lambda d, c, s: _tubers(d, c),
    "bamboo-mushrooms": lambda d, c, s: _strips(d, c),
    "dried-produce": lambda d, c, s: _strips(d, c),
    "poultry": lambda d, c, s: _poultry(d, c),
    "meat": lambda d, c, s: _meat(d, c),
    "eggs": lambda d, c, s: _eggs(d, c),
    "black-tea": lambda d, c, s: _tea(d, c),
    "oolong-tea": lambda d, c, s: _tea(d, c),
    "green-tea": lambda d, c, s: _tea(d, c),
    "peel-herbs": lambda d, c, s: _peel(d, c),
    "cured-meat": lambda d, c, s: _sausages(d, c),
    "honey": lambda d, c, s: _jar(d, c),
    "rice": lambda d, c, s: _sack(d, c, True),
    "grains": lambda d, c, s: _sack(d, c, True),
    "seeds": lambda d, c, s: _sack(d, c, True),
    "fertilizer": lambda d, c, s: _sack(d, c, False),
    "cooking-oil": lambda d, c, s: _bottle(d, c),
    "farm-tools": lambda d, c, s: _tool(d, c),
    "kitchenware": lambda d, c, s: _wok(d, c),
    "cleaning": lambda d, c, s: _box(d, c),
    "kitchen-appliances": lambda d, c, s: _appliance(d, c),
    "home-appliances": lambda d, c, s: _fan(d, c),
}


def product_image(category_slug: str, hex_color: str, key: str) -> bytes:
    """A PNG of a simple shape standing for the product (the same bytes for the same inputs)."""
    color = _rgb(hex_color)
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")
    image = Image.new("RGB", (WIDTH, HEIGHT), _light(color, 0.85))
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 380, 580, 470), fill=_light(color, 0.7))  # a shadow to stand on
    SHAPES.get(category_slug, lambda d, c, s: _fruit(d, c, 130))(draw, color, seed)
    out = BytesIO()
    image.save(out, "PNG", optimize=False, compress_level=1)
    return out.getvalue()
