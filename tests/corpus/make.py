"""The bad-input corpus: the garbage Quorum must refuse (and a few odd inputs it must
accept), made by code: nothing binary is checked in. `tests/test_bad_input_corpus.py`
sends every case through every endpoint that takes its kind.

    python -m tests.corpus.make OUT_DIR    # writes the cases as files, to look at by hand

Kinds: `image` (an upload), `boxes` (a JSON body of boxes for the canvas, adjudication and
gold endpoints), `import` (a file for the import endpoint, with its format).
"""

import io
import json
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests import images

OVERSIZE_BYTES = 120_000  # the tests set QUORUM_MAX_IMAGE_BYTES under this
PERSON = {"x1": 10, "y1": 5, "x2": 30, "y2": 40, "label": "pedestrian"}


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # image, boxes or import
    data: bytes  # the upload's bytes, or the JSON body
    is_accepted: bool = False  # an odd input that is fine
    format: str = ""  # an import's format
    file_name: str = "upload.jpg"


def image_cases() -> list[Case]:
    noise = Image.effect_noise((400, 400), 100).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    oversize = buffer.getvalue()
    assert len(oversize) > OVERSIZE_BYTES
    cmyk = io.BytesIO()
    Image.new("CMYK", (40, 30), (0, 120, 200, 10)).save(cmyk, format="JPEG")
    gif = io.BytesIO()
    frames = [Image.new("P", (16, 16), index) for index in range(3)]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    return [
        Case("truncated jpeg", "image", images.truncated_jpeg()),
        Case("decompression bomb", "image", images.png_bomb(), file_name="bomb.png"),
        Case("svg named .jpg", "image", images.SVG_AS_JPG),
        Case("html named .jpg", "image", images.HTML_AS_JPG),
        Case("zero bytes", "image", b""),
        Case("over the byte limit", "image", oversize, file_name="big.png"),
        Case("animated webp", "image", images.animated_webp(), file_name="anim.webp"),
        Case("animated gif", "image", gif.getvalue(), file_name="anim.gif"),
        Case("plain text", "image", b"a pedestrian, honestly", file_name="notes.txt"),
        Case("exif-rotated jpeg", "image", images.exif_rotated_jpeg(), is_accepted=True),
        Case("cmyk jpeg", "image", cmyk.getvalue(), is_accepted=True),
        Case("16-bit png", "image", images.sixteen_bit_png(), is_accepted=True, file_name="deep.png"),
    ]


def boxes_cases() -> list[Case]:
    def body(boxes) -> bytes:
        return json.dumps({"boxes": boxes}, allow_nan=True).encode()

    return [
        Case("NaN coordinate", "boxes", body([{**PERSON, "x1": float("nan")}])),
        Case("infinite coordinate", "boxes", body([{**PERSON, "x2": float("inf")}])),
        Case("coordinates as strings", "boxes", body([{**PERSON, "x1": "ten", "y1": "five"}])),
        Case("negative size", "boxes", body([{**PERSON, "x2": 5}])),
        Case("outside the image", "boxes", body([{**PERSON, "x2": 100_000}])),
        Case("unknown label", "boxes", body([{**PERSON, "label": "<b>car</b>"}])),
        Case("a box that is not an object", "boxes", body([None, 42])),
        Case("boxes that are not a list", "boxes", body("all of them")),
        Case("10,000 boxes", "boxes", body([PERSON] * 10_000)),
        Case("not JSON", "boxes", b"{boxes: oops"),
        Case("nested 5,000 deep", "boxes", b'{"boxes": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        Case("a coordinate of 400 digits", "boxes", body([{**PERSON, "x1": 10**400}])),
        Case("a box with a 1 MB label", "boxes", body([{**PERSON, "label": "p" * 2**20}])),
    ]


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, content in files.items():
            bundle.writestr(name, content)
    return buffer.getvalue()


def import_cases(image_names: list[str], *, width: int, height: int) -> list[Case]:
    """Imports against a project whose images are `image_names`, each `width` x `height`."""
    coco = {
        "images": [{"id": 1, "file_name": image_names[0], "width": width, "height": height}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20]}],
        "categories": [{"id": 1, "name": "pedestrian"}],
    }
    nan = json.dumps(coco).replace("[1, 2, 10, 20]", "[1, NaN, 10, 20]").encode()
    slip = io.BytesIO()
    with zipfile.ZipFile(slip, "w") as bundle:
        bundle.writestr("../../evil.xml", b"<annotation/>")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("labels/a.txt", b"0 0.5 0.5 0.1 0.1\n" * 30_000_000)  # 540 MB unpacked, ~0.5 MB packed
    studio = [
        {
            "data": {"image": f"/data/upload/1/{image_names[0]}"},
            "annotations": [{"result": [{
                "type": "rectanglelabels", "original_width": width, "original_height": height,
                "value": {"x": 10, "y": 10, "width": 20, "height": 30, "rectanglelabels": ["unicorn"]},
            }]}],
        }
    ]  # fmt: skip
    return [
        Case("malformed COCO", "import", b'{"images": [', format="coco", file_name="coco.json"),
        Case("COCO without its lists", "import", b'{"images": 3}', format="coco", file_name="coco.json"),
        Case("COCO with NaN", "import", nan, format="coco", file_name="coco.json"),
        Case(
            "COCO nested 5,000 deep",
            "import",
            b'{"images": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            format="coco",
            file_name="coco.json",
        ),
        Case(
            "COCO with an id of 5,000 digits",
            "import",
            json.dumps(coco).replace('"id": 1,', '"id": ' + "9" * 5000 + ",", 1).encode(),
            format="coco",
            file_name="coco.json",
        ),
        Case(
            "COCO with a width past 64 bits",
            "import",
            json.dumps(coco).replace(f'"width": {width}', f'"width": {2**70}', 1).encode(),
            format="coco",
            file_name="coco.json",
        ),
        Case(
            "COCO with a 400-digit coordinate",
            "import",
            json.dumps(coco).replace("[1, 2, 10, 20]", f"[1, 2, {10**400}, 20]").encode(),
            format="coco",
            file_name="coco.json",
        ),
        Case(
            "COCO with a list for an id",
            "import",
            json.dumps(coco).replace('"image_id": 1', '"image_id": [1]', 1).encode(),
            format="coco",
            file_name="coco.json",
        ),
        Case(
            "Label Studio nested 5,000 deep",
            "import",
            b"[" * 5000 + b"]" * 5000,
            format="labelstudio",
            file_name="studio.json",
        ),
        Case("zip slip", "import", slip.getvalue(), format="voc", file_name="voc.zip"),
        Case("zip bomb", "import", bomb.getvalue(), format="yolo", file_name="yolo.zip"),
        Case("not a zip", "import", b"PK\x03\x04 but no more", format="yolo", file_name="yolo.zip"),
        Case(
            "Label Studio with unknown labels",
            "import",
            json.dumps(studio).encode(),
            format="labelstudio",
            file_name="studio.json",
        ),
        Case(
            "Label Studio with a list for an author and for a result",
            "import",
            json.dumps([{**studio[0], "annotations": [{"completed_by": [1], "result": {"x": 1}}]}]).encode(),
            format="labelstudio",
            file_name="studio.json",
        ),
        Case(
            "Label Studio JSON-MIN",
            "import",
            json.dumps([{"image": image_names[0], "id": 1, "annotator": 1, "annotation_id": 1, "label": []}]).encode(),
            format="labelstudio",
            file_name="min.json",
        ),
        Case(
            "CVAT with words for coordinates and a 5,000-digit width",
            "import",
            (
                f'<annotations><image id="0" name="{image_names[0]}" width="{"9" * 5000}" height="{height}"/>'
                f'<image id="1" name="{image_names[0]}" width="{width}" height="{height}">'
                '<box label="pedestrian" xtl="left" ytl="1" xbr="5" ybr="5"/></image>'
                '<track id="0" label="pedestrian"><box frame="9" xtl="1" ytl="1" xbr="5" ybr="5"/></track>'
                "</annotations>"
            ).encode(),
            format="cvat",
            file_name="annotations.xml",
        ),
        Case(
            "CVAT with an entity declaration",
            "import",
            b'<!DOCTYPE a [<!ENTITY x "y">]><annotations>&x;</annotations>',
            format="cvat",
            file_name="annotations.xml",
        ),
        Case(
            "YOLO with an empty classes.txt",
            "import",
            zip_bytes({"classes.txt": b"\n", "labels/a.txt": b""}),
            format="yolo",
            file_name="y.zip",
        ),
    ]


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cases = [*image_cases(), *boxes_cases(), *import_cases(["street_0.jpg"], width=64, height=48)]
    for case in cases:
        (folder / f"{case.kind}-{case.name.replace(' ', '_').replace(',', '')}-{case.file_name}").write_bytes(case.data)
    print(f"{len(cases)} cases in {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
