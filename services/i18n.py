"""Translatable messages for the service layer, without importing Flask.

Services mark user-facing text with `_`; the text is translated lazily, when it is rendered,
by whatever translator the application installed (Flask-Babel's gettext in the web app).
Outside an app, the English source text is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from babel.support import LazyProxy

_translator: Callable[[str], str] = lambda s: s  # noqa: E731


def install_translator(fn: Callable[[str], str]) -> None:
    """Called once by the app factory with the web framework's gettext."""
    global _translator
    _translator = fn


def _translate(message: str, params: dict[str, Any]) -> str:
    text = _translator(message)
    return text % params if params else text


def _(message: str, **params: Any) -> Any:
    """A lazy, translatable message; `%(name)s` placeholders take keyword arguments."""
    return LazyProxy(_translate, message, params, enable_cache=False)


def yuan_text(fen: int) -> str:
    """An amount in fen as messages show it: ¥1,234.50 (integer arithmetic, never a float)."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}¥{fen // 100:,}.{fen % 100:02d}"
