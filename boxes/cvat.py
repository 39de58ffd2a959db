"""CVAT's XML: "CVAT for images 1.1", read and written, and the tracks of "CVAT for video 1.1" read.

Boxes are `<box label xtl ytl xbr ybr occluded outside>` in pixels, continuous as
Quorum's are. An image's boxes sit in its `<image id name width height>`; a track's boxes
in `<track>`, one per frame (the image whose id is the frame). `outside="1"` marks an
object that has left the picture: there is no box to read. Attributes carry Quorum's other
flags: `truncated`, and `ignore` (also `iscrowd` or `difficult`) for an ignore region.
Shapes other than boxes (polygons, points, tags) are counted, not read.
"""

from collections.abc import Iterable, Iterator
from xml.etree import ElementTree

from boxes.formats import (
    PRECISION,
    Dataset,
    FormatBox,
    FormatError,
    FormatImage,
    dataset_finish,
)

CVAT_VERSION = "1.1"
_TRUE = ("1", "true", "True", "yes")
SHAPES_LEFT_OUT = ("polygon", "polyline", "points", "ellipse", "cuboid", "mask", "skeleton", "tag")


def _attributes(element) -> dict[str, str]:
    return {
        (attribute.get("name") or "").strip(): (attribute.text or "").strip()
        for attribute in element.findall("attribute")
    }


def _box(element, *, where: str, problems: list[str]) -> FormatBox | None:
    try:
        x1, y1, x2, y2 = (float(element.get(key)) for key in ("xtl", "ytl", "xbr", "ybr"))
    except (TypeError, ValueError):
        problems.append(f"{where}: a box needs xtl, ytl, xbr, ybr numbers")
        return None
    label = (element.get("label") or "").strip()
    if not label:
        problems.append(f"{where}: a box needs a label")
        return None
    attributes = _attributes(element)
    return FormatBox(
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        label=label,
        is_occluded=(element.get("occluded") or "0") in _TRUE,
        is_truncated=attributes.get("truncated", "false") in _TRUE,
        is_ignored=any(attributes.get(name, "false") in _TRUE for name in ("ignore", "iscrowd", "difficult")),
    )


def cvat_read(content: bytes, *, clip: bool | None = False) -> Dataset:
    """A CVAT XML file: every image's boxes, and tracks' boxes on the frames they are inside."""
    if b"<!DOCTYPE" in content.upper() or b"<!ENTITY" in content.upper():
        raise FormatError("DOCTYPE and ENTITY declarations are not accepted")
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError as error:
        raise FormatError(f"Not valid XML ({error})") from error
    if root.tag != "annotations":
        raise FormatError("Not a CVAT XML file: its root element must be <annotations>")
    problems: list[str] = []
    left_out: dict[str, int] = {}
    images: dict[str, dict] = {}
    order: list[str] = []
    for element in root.findall("image"):
        name = (element.get("name") or "").strip()
        frame = (element.get("id") or "").strip()
        try:
            width, height = int(element.get("width")), int(element.get("height"))
        except (TypeError, ValueError):
            problems.append(f"image {name or frame}: width and height must be integers")
            continue
        if not name:
            problems.append(f"image {frame}: no name")
            continue
        boxes = []
        for index, child in enumerate(element, start=1):
            if child.tag == "box":
                if (child.get("outside") or "0") in _TRUE:
                    continue
                box = _box(child, where=f"{name} box {index}", problems=problems)
                if box is not None:
                    boxes.append(box)
            elif child.tag in SHAPES_LEFT_OUT:
                left_out[child.tag] = left_out.get(child.tag, 0) + 1
        images[frame] = {"name": name, "width": width, "height": height, "boxes": boxes}
        order.append(frame)
    for track in root.findall("track"):
        label = track.get("label") or ""
        for child in track:
            if child.tag != "box":
                if child.tag in SHAPES_LEFT_OUT:
                    left_out[child.tag] = left_out.get(child.tag, 0) + 1
                continue
            if (child.get("outside") or "0") in _TRUE:
                continue
            frame = (child.get("frame") or "").strip()
            if frame not in images:
                problems.append(f"track {track.get('id')}: frame {frame} is not an <image> of the file")
                continue
            child.set("label", child.get("label") or label)
            box = _box(child, where=f"track {track.get('id')} frame {frame}", problems=problems)
            if box is not None:
                images[frame]["boxes"].append(box)
    labels = [(label.findtext("name") or "").strip() for label in root.findall("meta/*/labels/label")] or [
        box.label for item in images.values() for box in item["boxes"]
    ]
    result = [
        FormatImage(
            file_name=images[frame]["name"],
            width=images[frame]["width"],
            height=images[frame]["height"],
            boxes=tuple(images[frame]["boxes"]),
        )
        for frame in order
    ]
    return dataset_finish(result, dict.fromkeys(labels), clip=clip, problems=problems, left_out=left_out)


def _number(value: float) -> str:
    return f"{round(float(value), PRECISION):.{PRECISION}f}".rstrip("0").rstrip(".")


def _image_element(frame: int, image: FormatImage, subset: str) -> ElementTree.Element:
    element = ElementTree.Element(
        "image",
        id=str(frame),
        name=image.file_name,
        subset=subset,
        width=str(image.width),
        height=str(image.height),
    )
    for box in image.boxes:
        shape = ElementTree.SubElement(
            element,
            "box",
            label=box.label,
            source="manual",
            occluded=str(int(box.is_occluded)),
            xtl=_number(box.x1),
            ytl=_number(box.y1),
            xbr=_number(box.x2),
            ybr=_number(box.y2),
            z_order="0",
        )
        for attribute, value in (("truncated", box.is_truncated), ("ignore", box.is_ignored)):
            ElementTree.SubElement(shape, "attribute", name=attribute).text = "true" if value else "false"
    return element


def cvat_iter_xml(images: Iterable[tuple[FormatImage, str]], *, labels: Iterable[str], name: str) -> Iterator[str]:
    """A "CVAT for images 1.1" XML of (image, subset) pairs, in pieces (an export never holds
    it whole), with the labels and the two attributes (truncated, ignore) declared as
    CVAT's import expects."""
    meta = ElementTree.Element("meta")
    task = ElementTree.SubElement(meta, "task")
    ElementTree.SubElement(task, "name").text = name
    declared = ElementTree.SubElement(task, "labels")
    for label in labels:
        element = ElementTree.SubElement(declared, "label")
        ElementTree.SubElement(element, "name").text = label
        ElementTree.SubElement(element, "type").text = "rectangle"
        attributes = ElementTree.SubElement(element, "attributes")
        for attribute in ("truncated", "ignore"):
            item = ElementTree.SubElement(attributes, "attribute")
            ElementTree.SubElement(item, "name").text = attribute
            ElementTree.SubElement(item, "mutable").text = "False"
            ElementTree.SubElement(item, "input_type").text = "checkbox"
            ElementTree.SubElement(item, "default_value").text = "false"
            ElementTree.SubElement(item, "values").text = "false\ntrue"
    ElementTree.indent(meta, level=1)
    yield f"<?xml version='1.0' encoding='utf-8'?>\n<annotations>\n  <version>{CVAT_VERSION}</version>\n  "
    yield ElementTree.tostring(meta, encoding="unicode")
    for frame, (image, subset) in enumerate(images):
        element = _image_element(frame, image, subset)
        ElementTree.indent(element, level=1)
        yield "\n  " + ElementTree.tostring(element, encoding="unicode")
    yield "\n</annotations>\n"


def cvat_write(images: Iterable[tuple[FormatImage, str]], *, labels: Iterable[str], name: str) -> bytes:
    """The whole of `cvat_iter_xml`, as bytes."""
    return "".join(cvat_iter_xml(images, labels=labels, name=name)).encode()
