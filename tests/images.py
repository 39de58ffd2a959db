"""Image bytes made on the fly for tests: good ones in every accepted format and the bad
inputs ingestion must refuse. Nothing binary is checked in."""

import io

import numpy as np
from PIL import Image


def image_bytes(fmt: str = "JPEG", *, size=(64, 48), color=(200, 30, 40), mode="RGB", seed: int = 0, **save) -> bytes:
    """An image whose pixels depend on `seed`, so that different seeds give different sha256."""
    rng = np.random.default_rng(seed)
    if mode == "RGB":
        array = np.full((size[1], size[0], 3), color, dtype=np.uint8)
        array[: size[1] // 4, : size[0] // 4] = rng.integers(0, 255, (size[1] // 4, size[0] // 4, 3))
        image = Image.fromarray(array, "RGB")
    else:
        image = Image.new(mode, size)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def exif_rotated_jpeg(*, size=(40, 20), orientation: int = 6) -> bytes:
    """A JPEG stored sideways with an EXIF Orientation tag; the top-left quarter is white."""
    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    array[: size[1] // 2, : size[0] // 2] = 255
    image = Image.fromarray(array, "RGB")
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Quorum test camera"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    data = image_bytes("JPEG", size=(200, 150), seed=3)
    return data[: len(data) // 2]


def png_bomb(*, width: int = 10_000, height: int = 6_000) -> bytes:
    """A tiny PNG declaring 60 megapixels: a 1-bit blank image compresses to almost nothing."""
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def animated_webp() -> bytes:
    frames = [Image.new("RGB", (32, 32), color) for color in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def sixteen_bit_png() -> bytes:
    array = (np.arange(32 * 16, dtype=np.uint16).reshape(16, 32) * 120).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


HTML_AS_JPG = b"<!doctype html><html><body><script>alert(1)</script></body></html>"
SVG_AS_JPG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
