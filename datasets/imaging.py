"""Decoding images the one way Quorum sees them: checked, upright, RGB, without metadata.

Ingestion stores what `decode_upright_rgb` returns; training, evaluation and serving decode
through the same function, so every part of Quorum sees the same pixels.
"""

import io
import sys
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from config.errors import DomainError

ACCEPTED_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
ORIENTATION_TAG = 0x0112


def _pillow_open():
    """Pillow's own `Image.open`.

    Importing ultralytics replaces `PIL.Image.open` process-wide with a wrapper that, on a
    file Pillow cannot identify, tries to install and load a HEIF plugin. Quorum decides
    what it accepts itself, so it always opens images with Pillow's original function.
    """
    opener = PILImage.open
    if getattr(opener, "__module__", "") != "PIL.Image":
        patches = sys.modules.get("ultralytics.utils.patches")
        opener = getattr(patches, "_image_open", opener)
    return opener


class ImageRefused(DomainError):
    """An input Quorum does not accept; `status` is the HTTP status to answer (400, 413, 415)."""

    def __init__(self, code: str, message: str, *, status: int = 400):
        super().__init__(message, code=code)
        self.status = self.status_code = status


# What an image file may carry and still be stored byte for byte: structure, no metadata.
# Anything else (EXIF, ICC profiles, XMP, comments, text chunks, transparency) is dropped
# by re-encoding.
CLEAN_INFO = {
    "jpeg": {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "progressive", "progression"},
    "png": {"dpi", "gamma", "srgb", "aspect"},
    "webp": {"loop", "duration", "background", "timestamp"},
}


@dataclass(frozen=True)
class DecodedImage:
    image: PILImage.Image  # RGB, upright
    format: str  # "jpeg", "png" or "webp", decided by content
    width: int
    height: int
    # The file already is what Quorum stores: RGB, upright, without metadata. Its bytes can
    # be kept as they are, which spares a re-encode and its loss of quality.
    is_clean: bool = False
    orientation: int = 1  # the EXIF orientation the file had (1: none); 5 to 8 swap width and height


class StoredFileMissing(DomainError):
    status_code = 404
    code = "file_missing"


def stored_file_open(stored) -> BinaryIO:
    """A stored file (a FieldFile) opened for reading; 404 when the storage has lost it."""
    try:
        return stored.open("rb")
    except FileNotFoundError:
        raise StoredFileMissing("The image's file is missing from storage; tell an administrator.") from None


def decode_upright_rgb(file: BinaryIO, *, max_pixels: int) -> DecodedImage:
    """Decode a JPEG, PNG or WebP from `file`: checked, EXIF orientation applied once, RGB.

    The format is decided by the content, never by a name or a client's content type.
    Refuses (ImageRefused) anything else, animations, images over `max_pixels` before any
    pixel is decoded (decompression bombs), and files that fail `verify()` or a full decode
    (truncated or corrupt). 16-bit images are scaled to 8 bits; alpha is dropped; CMYK,
    greyscale and palette images are converted to RGB.
    """
    try:
        file.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            open_image = _pillow_open()
            with open_image(file) as probe:
                image_format = ACCEPTED_FORMATS.get(probe.format or "")
                if image_format is None:
                    raise ImageRefused(
                        "unsupported_format",
                        f"{probe.format} images are not accepted; send JPEG, PNG or WebP.",
                        status=415,
                    )
                width, height = probe.size
                if width * height > max_pixels:
                    raise _too_many_pixels(width, height, max_pixels)
                if getattr(probe, "n_frames", 1) > 1:
                    raise ImageRefused("animated", "Animated images are not accepted.", status=415)
                probe.verify()
            file.seek(0)
            with open_image(file) as image:
                image.load()
                orientation = image.getexif().get(ORIENTATION_TAG, 1)
                upright = ImageOps.exif_transpose(image) if orientation not in (None, 1) else image
                rgb = _to_rgb(upright)
                is_clean = rgb is image and set(image.info) <= CLEAN_INFO[image_format]
                # No metadata travels on: EXIF, ICC profiles and text chunks stay behind.
                rgb.info = {}
    except ImageRefused:
        raise
    except UnidentifiedImageError as error:
        raise ImageRefused("not_an_image", "The file is not a JPEG, PNG or WebP image.", status=415) from error
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as error:
        raise ImageRefused("too_many_pixels", f"The image has too many pixels: {error}", status=413) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageRefused("corrupt", f"The image could not be decoded: {error}") from error
    return DecodedImage(
        image=rgb,
        format=image_format,
        width=rgb.width,
        height=rgb.height,
        is_clean=is_clean,
        orientation=orientation if orientation in range(1, 9) else 1,
    )


def _too_many_pixels(width: int, height: int, max_pixels: int) -> ImageRefused:
    return ImageRefused(
        "too_many_pixels",
        f"The image is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is {max_pixels / 1e6:.1f}.",
        status=413,
    )


def _to_rgb(image: PILImage.Image) -> PILImage.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.uint32)
        # 16-bit samples keep their top 8 bits; 32-bit integer ones are stretched to their range.
        top = 65535 if image.mode.startswith("I;16") else max(int(array.max()), 1)
        return PILImage.fromarray((array * 255 // top).astype(np.uint8)).convert("RGB")
    if image.mode == "F":
        array = np.nan_to_num(np.asarray(image, dtype=np.float32))
        span = float(array.max() - array.min()) or 1.0
        return PILImage.fromarray(((array - array.min()) * 255 / span).astype(np.uint8)).convert("RGB")
    if image.mode in ("P", "PA", "LA", "RGBA", "La", "RGBa"):
        return image.convert("RGBA").convert("RGB")
    return image.convert("RGB")


def encode_for_storage(decoded: DecodedImage) -> bytes:
    """The bytes Quorum stores: the same format as uploaded, RGB, no EXIF or ICC profile."""
    buffer = io.BytesIO()
    if decoded.format == "jpeg":
        decoded.image.save(buffer, format="JPEG", quality=95, subsampling=0)
    elif decoded.format == "png":
        decoded.image.save(buffer, format="PNG", compress_level=3)
    else:
        decoded.image.save(buffer, format="WEBP", quality=95, method=2)
    return buffer.getvalue()


def thumbnail_bytes(image: PILImage.Image, *, size: int = 256) -> bytes:
    """A JPEG thumbnail whose longer side is `size` pixels."""
    thumbnail = image.copy()
    thumbnail.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
