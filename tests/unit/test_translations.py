"""Every user-facing string has a Simplified Chinese translation, with the same placeholders."""

from __future__ import annotations

import re

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from marketplace.config import PROJECT_ROOT

PO = PROJECT_ROOT / "marketplace" / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")


def source_messages() -> set[str]:
    found: set[str] = set()
    method_map = [
        ("marketplace/**.py", "python"),
        ("services/**.py", "python"),
        ("templates/**.html", "jinja2"),
    ]
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(PROJECT_ROOT), method_map=method_map, keywords=KEYWORDS
    ):
        if isinstance(message, tuple):
            found.update(m for m in message if m)
        elif message:
            found.add(message)
    return found


def catalog():  # type: ignore[no-untyped-def]
    with PO.open("rb") as fh:
        return read_po(fh, locale="zh_Hans_CN")


class TestChineseCatalog:
    def test_every_source_string_is_translated(self):
        translated: set[str] = set()
        for msg in catalog():
            strings = msg.string if isinstance(msg.string, tuple) else (msg.string,)
            if msg.id and not msg.fuzzy and all(strings):
                # a plural entry covers both its singular and its plural id
                translated.update(msg.id if isinstance(msg.id, tuple) else (msg.id,))
        missing = sorted(source_messages() - translated)
        assert missing == [], f"untranslated strings (run `make extract-messages`): {missing[:20]}"

    def test_translations_keep_their_placeholders(self):
        wrong = []
        for msg in catalog():
            if not msg.id or not msg.string:
                continue
            ids = msg.id if isinstance(msg.id, tuple) else (msg.id,)
            strings = msg.string if isinstance(msg.string, tuple) else (msg.string,)
            wanted = set(PLACEHOLDER.findall(ids[0]))
            for s in strings:
                if set(PLACEHOLDER.findall(s)) != wanted:
                    wrong.append(ids[0])
        assert wrong == []

    def test_translations_are_chinese(self):
        han = re.compile(r"[\u4e00-\u9fff]")
        not_chinese = [m.id for m in catalog() if m.id and m.string and not han.search(str(m.string))]
        # Strings that are only a name, a number or a code may stay as they are.
        allowed = {"API", "OpenAPI", "中文", "English"}
        assert [m for m in not_chinese if m not in allowed] == []
