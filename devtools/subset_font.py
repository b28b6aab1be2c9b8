"""Regenerate the bundled Chinese font (marketplace/assets/fonts/) that the server draws with
(parcel labels; later other server-drawn Chinese): a subset of WenQuanYi Micro Hei
(Debian's fonts-wqy-microhei, Apache-2.0 or GPLv3 with the font exception) covering ASCII,
Latin-1, general and CJK punctuation, full-width forms, every character of GB2312 (its 6,763
hanzi and its symbols) and every character of the Guangdong division names
(/work/shared/data/guangdong/divisions.csv, or the path given).

    python -m devtools.subset_font [--source wqy-microhei.ttc] [--divisions divisions.csv]

The result is deterministic for one source font and list of characters (no timestamp)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
DIVISIONS = Path("/work/shared/data/guangdong/divisions.csv")
TARGET = ROOT / "marketplace" / "assets" / "fonts" / "wqy-microhei-gb2312.ttf"
RANGES = (
    (0x20, 0x7E),  # ASCII
    (0xA0, 0xFF),  # Latin-1 (¥, °, ×, ·)
    (0x2010, 0x2027),  # dashes, quotes, ellipsis
    (0x2030, 0x203B),  # ‰, ※
    (0x2190, 0x2193),  # arrows
    (0x2212, 0x2212),  # minus (−18 °C)
    (0x3000, 0x303F),  # CJK punctuation
    (0xFF01, 0xFF5E),  # full-width forms
    (0xFFE0, 0xFFE6),  # full-width signs (￥)
)


def gb2312() -> set[str]:
    """Every character GB2312 encodes: rows 0xA1-0xA9 (symbols) and 0xB0-0xF7 (hanzi)."""
    found = set()
    for row in (*range(0xA1, 0xAA), *range(0xB0, 0xF8)):
        for cell in range(0xA1, 0xFF):
            try:
                found.add(bytes((row, cell)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return found


def division_chars(path: Path) -> set[str]:
    with path.open(encoding="utf-8") as f:
        return {c for r in csv.DictReader(f) for c in r["name"]}


def characters(divisions: Path) -> set[str]:
    chars = {chr(c) for low, high in RANGES for c in range(low, high + 1)}
    return chars | gb2312() | division_chars(divisions)


def build(source: Path, divisions: Path, target: Path) -> tuple[int, int]:
    font = TTFont(source, fontNumber=0)  # Micro Hei (1 is Micro Hei Mono)
    wanted = characters(divisions)
    cmap = font.getBestCmap()
    missing = sorted(c for c in wanted if ord(c) not in cmap and c.isprintable() and not c.isspace())
    options = subset.Options()
    options.name_IDs = ["*"]  # keep the copyright and licence names
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.recalc_timestamp = False
    options.hinting = False  # printed labels and images: no screen hinting, a smaller file
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in wanted])
    subsetter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    font.save(target)
    if missing:
        print(f"not in the source font ({len(missing)}): {''.join(missing[:80])}")
    return len(wanted), target.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--divisions", type=Path, default=DIVISIONS)
    parser.add_argument("--target", type=Path, default=TARGET)
    args = parser.parse_args()
    count, size = build(args.source, args.divisions, args.target)
    print(f"{args.target}: {count} characters, {size / 1024 / 1024:.2f} MB")


if __name__ == "__main__":
    main()
