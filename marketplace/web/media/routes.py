"""Product photos as stored: /media/<key>/<width>.<webp|jpg>, cached for a year (keys never change
their content), and the template helpers that point <picture> elements at them."""

from __future__ import annotations

from typing import Any

from flask import Response, abort, current_app, send_file

from marketplace.gateways import media_storage
from marketplace.web.media import bp
from services import media

CACHE_CONTROL = "public, max-age=31536000, immutable"
ONE_YEAR = 31536000


@bp.get("/<path:key>")
def photo_file(key: str):  # type: ignore[no-untyped-def]
    # Only keys this app makes: no "..", no other files under MEDIA_ROOT, no guessing of names.
    content_type = media.content_type_of(key)
    if content_type is None:
        abort(404)
    store = media_storage()
    path = store.path(key)
    if path is not None:
        response = send_file(path, mimetype=content_type, max_age=ONE_YEAR, conditional=True, etag=True)
    else:
        try:
            data = store.read(key)
        except KeyError:
            abort(404)
        response = Response(data, mimetype=content_type)
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


def media_url(key: str) -> str:
    return f"{current_app.config['MEDIA_URL_PREFIX']}/{key}"


@bp.app_template_global("photo_variants")
def photo_variants(photo: Any) -> list[dict[str, Any]]:
    """The stored sizes of a photo, smallest first: width, height and the WebP and JPEG URLs."""
    out = []
    for w in media.variant_widths(photo.width):
        h = max(1, round(photo.height * w / photo.width))
        out.append(
            {
                "width": w,
                "height": h,
                "webp": media_url(media.variant_key(photo.key, w, "webp")),
                "jpg": media_url(media.variant_key(photo.key, w, "jpg")),
            }
        )
    return out
