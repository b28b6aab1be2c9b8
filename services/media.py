"""Product photos: uploads checked by content, re-encoded without metadata in phone sizes
(WebP with a JPEG fallback), kept in a storage behind an interface (the local filesystem by default).

A photo is stored under a generated key ("p/3f/<32 hex>"), never a name the client sent; each size
is a file "<key>/<width>.webp" and "<key>/<width>.jpg". Keys never change their content: a new
photo gets a new key, so the files can be cached forever.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import threading
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageChops, ImageCms, UnidentifiedImageError
from sqlalchemy.orm import Session

from domain import AuditEvent, ProductPhoto, User
from services import catalog
from services.errors import NotFound, RateLimited, ValidationError
from services.i18n import _

log = logging.getLogger(__name__)

MB = 1024 * 1024
MAX_UPLOAD_BYTES = 10 * MB
# About 24 megapixels (a 6000×4000 camera photo): far more than the 960 px we keep, and a bound
# on what one upload costs to decode (an RGBA picture that size is 96 MB). Checked from the
# header, before any pixel is decoded. Pillow's own guard says the same for every image this
# process opens: it warns above it (an error here) and refuses twice it.
MAX_PIXELS = 24_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Uploads decoded at once per process, and how long the next one waits for its turn before it is
# told to try again (a worker's memory is bounded by this, not by how many arrive together).
MAX_CONCURRENT_IMAGES = 2
IMAGE_WAIT_SECONDS = 20.0
MIN_SIDE = 100
MAX_PHOTOS = 6
# Phone sizes: a list thumbnail, a phone screen, a high-density phone screen or a desktop.
WIDTHS = (240, 480, 960)
WEBP_QUALITY = 75
JPEG_QUALITY = 80
# Pillow identifies only these (so no other decoder, e.g. EPS through Ghostscript, ever runs).
OPEN_FORMATS = ("JPEG", "PNG", "WEBP")
ACCEPTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP"}  # MPO: the multi-picture JPEG some phones take
ORIENTATION_TAG = 0x0112
CONTENT_TYPES = {"webp": "image/webp", "jpg": "image/jpeg"}
# ISO base media "ftyp" brands of HEIF/HEIC (iPhones) and AVIF photos.
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}

PHOTO_KEY_RE = re.compile(r"^p/[0-9a-f]{2}/[0-9a-f]{32}$", re.ASCII)
VARIANT_KEY_RE = re.compile(r"^(p/[0-9a-f]{2}/[0-9a-f]{32})/([0-9]{1,4})\.(webp|jpg)$", re.ASCII)
# What LocalStorage accepts as a key at all: lowercase path segments, no dots except one extension.
_STORAGE_KEY_RE = re.compile(r"^[a-z0-9]+(?:/[a-z0-9]+)*(?:\.[a-z0-9]{2,5})?$", re.ASCII)


# --- storage --------------------------------------------------------------------------------


class Storage(Protocol):
    """Where photo files live. Keys are made by this module, never taken from a client.

    The app builds one per process from MEDIA_STORAGE (marketplace/gateways.py) and passes it in;
    an implementation must be safe to share between threads."""

    def save(self, key: str, data: bytes, content_type: str) -> None:
        """Store the bytes under the key (replacing nothing: keys are new)."""

    def read(self, key: str) -> bytes:
        """The stored bytes; raises KeyError for an unknown key."""

    def path(self, key: str) -> Path | None:
        """A local file to serve the key from, or None if the storage has none (or no such key)."""

    def exists(self, key: str) -> bool:
        """Whether the key is stored."""

    def delete(self, key: str) -> None:
        """Remove the key; a missing key is not an error."""


class LocalStorage:
    """Files under a root directory; each write goes to a temporary file renamed into place,
    so a reader never sees half a file and a crash leaves no partial photo behind."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    def _file(self, key: str) -> Path:
        if not _STORAGE_KEY_RE.match(key or ""):
            raise KeyError(key)
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise KeyError(key)
        return path

    def save(self, key: str, data: bytes, content_type: str) -> None:
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # a front proxy may serve the files directly
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes:
        try:
            return self._file(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def path(self, key: str) -> Path | None:
        try:
            path = self._file(key)
        except KeyError:
            return None
        return path if path.is_file() else None

    def exists(self, key: str) -> bool:
        return self.path(key) is not None

    def delete(self, key: str) -> None:
        try:
            path = self._file(key)
        except KeyError:
            return
        path.unlink(missing_ok=True)
        # Remove the photo's directory once its last size is gone (not the shared ones above it).
        parent = path.parent
        if (
            parent != self.root
            and parent.is_relative_to(self.root)
            and PHOTO_KEY_RE.match(parent.relative_to(self.root).as_posix())
        ):
            with contextlib.suppress(OSError):  # not empty yet
                parent.rmdir()


# --- keys -----------------------------------------------------------------------------------


def new_photo_key() -> str:
    hex_ = uuid.uuid4().hex
    return f"p/{hex_[:2]}/{hex_}"


def variant_widths(width: int) -> list[int]:
    """The widths stored for a photo `width` pixels wide: the phone sizes, never upscaled."""
    return sorted({min(w, width) for w in WIDTHS})


def variant_key(photo_key: str, width: int, ext: str) -> str:
    return f"{photo_key}/{width}.{ext}"


def variant_keys(photo: ProductPhoto) -> list[str]:
    return [variant_key(photo.key, w, ext) for w in variant_widths(photo.width) for ext in CONTENT_TYPES]


def parse_variant_key(key: str) -> tuple[str, int, str] | None:
    """(photo key, width, extension) of a well-formed variant key, else None."""
    match = VARIANT_KEY_RE.match(key or "")
    if match is None:
        return None
    return match.group(1), int(match.group(2)), match.group(3)


def content_type_of(key: str) -> str | None:
    parsed = parse_variant_key(key)
    return CONTENT_TYPES[parsed[2]] if parsed else None


# --- processing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    width: int
    height: int
    ext: str  # "webp" or "jpg"
    data: bytes

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.ext]


@dataclass(frozen=True)
class ProcessedImage:
    """The upright size of the photo as taken, and its re-encoded sizes."""

    width: int
    height: int
    variants: tuple[Variant, ...]


def _photo_error(message: Any) -> ValidationError:
    return ValidationError(message, field_errors={"photo": [message]})


def _not_a_photo() -> ValidationError:
    return _photo_error(_("This file is not a photo. Choose a photo taken with your camera."))


def _unsupported() -> ValidationError:
    return _photo_error(
        _(
            "This kind of photo is not supported. Choose a JPEG, PNG or WebP photo (on an iPhone: "
            "Settings → Camera → Formats → Most Compatible)."
        )
    )


def _too_many_pixels() -> ValidationError:
    return _photo_error(
        _("The photo has too many pixels (at most %(n)d megapixels).", n=MAX_PIXELS // 1_000_000)
    )


class ImagesBusy(RateLimited):
    code = "images_busy"


class ImageWorkLimit:
    """At most `slots` photos decoded at once in this process; the next waits up to
    `wait_seconds` for a slot, then gets ImagesBusy (429: try again) instead of queueing on."""

    def __init__(self, slots: int = MAX_CONCURRENT_IMAGES, wait_seconds: float = IMAGE_WAIT_SECONDS):
        self.slots = slots
        self.wait_seconds = wait_seconds
        self._free = threading.BoundedSemaphore(slots)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if not self._free.acquire(timeout=self.wait_seconds):
            message = _("Many photos are being processed right now. Please try again in a moment.")
            raise ImagesBusy(message, field_errors={"photo": [message]})
        try:
            yield
        finally:
            self._free.release()


IMAGE_WORK = ImageWorkLimit()


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def _to_srgb(img: Image.Image) -> Image.Image:
    """RGB pixels in sRGB: colour profiles (e.g. Display P3) are applied, then dropped."""
    icc = img.info.get("icc_profile")
    if icc and img.mode in ("RGB", "CMYK"):
        try:
            converted = ImageCms.profileToProfile(
                img,
                ImageCms.ImageCmsProfile(BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken profile: use the pixels as they are
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB") if img.mode != "RGB" else img


def _encode(img: Image.Image) -> tuple[bytes, bytes]:
    img.info = {}  # nothing from the original (EXIF, GPS, XMP, ICC, comments) goes out again
    webp, jpeg = BytesIO(), BytesIO()
    img.save(webp, "WEBP", quality=WEBP_QUALITY, method=4)
    img.save(jpeg, "JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True)
    return webp.getvalue(), jpeg.getvalue()


def process_upload(
    data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS
) -> ProcessedImage:
    """Check an upload by its content and re-encode it: upright, metadata stripped, sRGB,
    in the phone widths as WebP and JPEG. Raises ValidationError (field "photo") otherwise."""
    if not data:
        raise _photo_error(_("Choose a photo first."))
    if len(data) > max_bytes:
        # Refused on its length alone, before any decoding.
        raise _photo_error(_("The photo is too large (at most %(n)d MB).", n=max(1, max_bytes // MB)))
    if _is_heif(data):
        raise _unsupported()
    with warnings.catch_warnings():
        # Pillow warns (rather than fails) between its own limit and twice that: fail on both.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # The header only: format and size, no pixel decoded yet.
            with Image.open(BytesIO(data), formats=OPEN_FORMATS) as probe:
                if probe.format not in ACCEPTED_FORMATS:
                    raise _unsupported()
                width, height = probe.size
                if width * height > max_pixels:
                    raise _too_many_pixels()
                if min(width, height) < MIN_SIDE:
                    raise _photo_error(_("The photo is too small. Take a bigger photo."))
                probe.verify()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels() from None
        except UnidentifiedImageError:
            raise _not_a_photo() from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError):
            raise _damaged() from None
    with IMAGE_WORK.slot():
        return _reencode(data)


def _damaged() -> ValidationError:
    return _photo_error(_("The photo is damaged or incomplete. Please take it again."))


# EXIF orientations: the transposition that turns the stored picture upright (as ImageOps does).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _reduced(img: Image.Image) -> Image.Image:
    """The decoded picture made smaller by a whole factor, both sides still at least the largest
    phone width, before anything converts its colours: turning, the colour profile, the white
    background and resizing then copy a picture of a few megabytes, not the full one. A picture
    with transparency is put on white here, one band at a time, for the same reason."""
    factor = max(1, min(img.size) // WIDTHS[-1])
    if factor == 1:
        return img
    if img.mode in ("RGBA", "LA"):
        # Premultiplied averages (colour × alpha) then white where it was transparent: what
        # compositing on white at full size and then reducing would give.
        alpha = img.getchannel("A")
        colours = [ImageChops.multiply(img.getchannel(b), alpha).reduce(factor) for b in img.getbands()[:-1]]
        white = ImageChops.invert(alpha.reduce(factor))
        return Image.merge("RGB" if len(colours) == 3 else "L", [ImageChops.add(c, white) for c in colours])
    try:
        small = img.reduce(factor)
    except ValueError:
        # Palette indexes (and a few rare modes) cannot be averaged: sample them instead.
        size = (-(-img.width // factor), -(-img.height // factor))
        small = img.resize(size, Image.Resampling.NEAREST)
    small.info = {k: img.info[k] for k in ("icc_profile", "transparency") if k in img.info}
    return small


def _reencode(data: bytes) -> ProcessedImage:
    """Decode (a JPEG at a reduced scale), reduce, turn upright, sRGB, then the phone sizes.
    The header was checked (process_upload): the picture is within MAX_PIXELS."""
    try:
        with Image.open(BytesIO(data), formats=OPEN_FORMATS) as img:
            width, height = img.size
            if img.format in ("JPEG", "MPO"):
                # Decode a large JPEG at a reduced scale that is still at least 960 px.
                img.draft(None, (WIDTHS[-1], WIDTHS[-1]))
            img.load()
            orientation = img.getexif().get(ORIENTATION_TAG, 1)
            small = _reduced(img)
        # EXIF orientations 5 to 8 turn the picture a quarter: width and height swap.
        turned = orientation in (5, 6, 7, 8)
        method = _UPRIGHT.get(orientation)
        upright = small.transpose(method) if method is not None else small
        if method is not None:
            upright.info = dict(small.info)
        rgb = _to_srgb(upright)
        rgb.load()
    except Image.DecompressionBombError:
        raise _too_many_pixels() from None
    except UnidentifiedImageError:
        raise _not_a_photo() from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError):
        raise _damaged() from None

    # The size as taken, upright (a large picture was decoded or reduced to a smaller scale).
    full_w, full_h = (height, width) if turned else (width, height)
    variants: list[Variant] = []
    current = rgb
    for w in sorted(variant_widths(full_w), reverse=True):
        h = max(1, round(full_h * w / full_w))
        if (w, h) != current.size:
            current = current.resize((w, h), Image.Resampling.LANCZOS, reducing_gap=3.0)
        webp, jpeg = _encode(current)
        variants.append(Variant(w, h, "webp", webp))
        variants.append(Variant(w, h, "jpg", jpeg))
    variants.sort(key=lambda v: (v.width, v.ext))
    return ProcessedImage(width=full_w, height=full_h, variants=tuple(variants))


# --- photos of a product ----------------------------------------------------------------------


def _audit(session: Session, actor: User, action: str, product_id: int, changes: dict[str, Any]) -> None:
    session.add(
        AuditEvent(
            actor_id=actor.id,
            action=action,
            entity_type="product",
            entity_id=str(product_id),
            changes=changes,
        )
    )


def add_photo(
    session: Session,
    storage: Storage,
    actor: User | None,
    product_id: int,
    data: bytes,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> ProductPhoto:
    """Add a photo to a listing: files first, then the row; if the row fails, the files go."""
    product = catalog.get_product(session, product_id)
    actor = catalog.require_editor(session, actor, product)
    if len(product.photos) >= MAX_PHOTOS:
        raise _photo_error(_("A listing has at most %(n)d photos. Remove one first.", n=MAX_PHOTOS))
    image = process_upload(data, max_bytes=max_bytes)
    key = new_photo_key()
    saved: list[str] = []
    try:
        for v in image.variants:
            k = variant_key(key, v.width, v.ext)
            storage.save(k, v.data, v.content_type)
            saved.append(k)
        position = max((p.position for p in product.photos), default=-1) + 1
        photo = ProductPhoto(key=key, width=image.width, height=image.height, position=position)
        product.photos.append(photo)
        session.flush()
        count = len(product.photos)
        _audit(session, actor, "add_photo", product.id, {"photos": [count - 1, count]})
        session.commit()
    except BaseException:
        session.rollback()
        for k in saved:
            try:
                storage.delete(k)
            except OSError:
                log.exception("could not remove %s after a failed upload", k)
        raise
    return photo


def _photo_of(session: Session, product_id: int, photo_id: int) -> ProductPhoto:
    photo = session.get(ProductPhoto, photo_id) if 0 < photo_id < 2**31 else None
    if photo is None or photo.product_id != product_id:
        raise NotFound(_("This photo does not exist."))
    return photo


def remove_photo(
    session: Session, storage: Storage, actor: User | None, product_id: int, photo_id: int
) -> None:
    """Take a photo off a listing; its files are deleted once the change is committed."""
    product = catalog.get_product(session, product_id)
    actor = catalog.require_editor(session, actor, product)
    photo = _photo_of(session, product.id, photo_id)
    keys = variant_keys(photo)
    before = len(product.photos)
    product.photos.remove(photo)
    for i, p in enumerate(product.photos):
        p.position = i
    _audit(session, actor, "remove_photo", product.id, {"photos": [before, before - 1]})
    session.commit()
    for k in keys:
        try:
            storage.delete(k)
        except OSError:
            log.exception("could not remove %s", k)


def move_photo(
    session: Session, actor: User | None, product_id: int, photo_id: int, position: int
) -> list[ProductPhoto]:
    """Put a photo at a position (0: the main photo buyers see first); the rest keep their order."""
    product = catalog.get_product(session, product_id)
    catalog.require_editor(session, actor, product)
    photo = _photo_of(session, product.id, photo_id)
    ordered = [p for p in product.photos if p.id != photo.id]
    ordered.insert(max(0, min(int(position), len(ordered))), photo)
    for i, p in enumerate(ordered):
        p.position = i
    session.commit()
    session.refresh(product, ["photos"])
    return list(product.photos)
