"""Reading and writing box annotations in the formats people already use.

COCO JSON, Ultralytics YOLO (data.yaml, classes.txt or obj.names + labels/*.txt) and
Pascal VOC XML here; Label Studio JSON in `boxes.labelstudio`, CVAT for images XML in
`boxes.cvat`. Pure: bytes and dicts in, dataclasses out.

Quorum's one convention inside: absolute pixel xyxy, continuous coordinates (the left edge
of the image is x = 0, the right edge x = width). Coordinates are kept to 1/1000 of a
pixel (`PRECISION` decimals), which is what makes round trips exact: reading what
`*_write` wrote gives back the same numbers.

How each format carries Quorum's flags:
- COCO: an ignore region is `iscrowd: 1`; occluded and truncated go in `attributes`
  (CVAT's convention).
- VOC: an ignore region is `difficult` (VOC's evaluation ignores those); `truncated` and
  `occluded` are VOC's own fields. The VOC devkit numbers pixels from 1: xmin = x1 + 1,
  xmax = x2. Some writers (Label Studio's converter among them) number them from 0
  (xmin = x1): `voc_read` takes the origin as a parameter, or sees it where a box starts at 0.
- YOLO: label and box only. Ignore regions and flags are not exported to YOLO.
"""

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from xml.etree import ElementTree

import numpy as np

from boxes.geometry import xyxy_to_yolo, yolo_to_xyxy

PRECISION = 3
# The largest image side an export may state (pixels).
MAX_SIDE = 1_000_000


# Deeper than any export or API body needs (COCO and Label Studio go 6 levels down), far
# below the depth at which the parser would exhaust the interpreter's stack.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


class JsonTooDeep(ValueError):
    """JSON nested deeper than allowed; raised before the document is parsed."""


def json_depth(data: bytes | str) -> int:
    """How deep arrays and objects nest in a JSON text (0 for a scalar), counted on the raw
    text with strings blanked out, in linear time, without parsing it."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    codes = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    steps = np.isin(codes, (0x5B, 0x7B)).astype(np.int64) - np.isin(codes, (0x5D, 0x7D))
    return int(np.cumsum(steps).max()) if len(steps) else 0


def json_parse(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH):
    """`json.loads`, after refusing (JsonTooDeep) a text nested deeper than `max_depth`."""
    depth = json_depth(data)
    if depth > max_depth:
        raise JsonTooDeep(f"The JSON nests {depth} levels deep; at most {max_depth} are accepted.")
    return json.loads(data)


class FormatError(ValueError):
    """An input that cannot be read; `problems` lists every offending item."""

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = problems or []
        detail = f": {'; '.join(self.problems[:20])}" if self.problems else ""
        more = f" (and {len(self.problems) - 20} more)" if len(self.problems) > 20 else ""
        super().__init__(f"{message}{detail}{more}")
        self.message = message


@dataclass(frozen=True)
class FormatBox:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    is_ignored: bool = False
    is_occluded: bool = False
    is_truncated: bool = False
    support: int | None = None  # annotators behind a consensus box; COCO writes it as an attribute
    score: float | None = None  # a model's confidence, for predictions


@dataclass(frozen=True)
class Author:
    """Who made an annotation, as an export names them: the tool's own user id and, where
    the export has it, their email."""

    key: str
    email: str = ""

    def __str__(self) -> str:
        return f"user {self.key}" + (f" ({self.email})" if self.email and self.email != self.key else "")


# What an entry of an export is: a person's finished annotation, one they cancelled (a
# skip), or a model's prediction.
LABELLED, CANCELLED, PREDICTION = "labelled", "cancelled", "prediction"


@dataclass(frozen=True)
class FormatImage:
    """One image's boxes by one author (or by whoever made the file, when it does not say)."""

    file_name: str
    width: int
    height: int
    boxes: tuple[FormatBox, ...] = ()
    author: Author | None = None
    state: str = LABELLED
    is_ground_truth: bool = False  # marked as the reference among a task's annotations
    model: str = ""  # a prediction's model version
    task: str = ""  # the export's own id of the task or image, for messages


@dataclass(frozen=True)
class Dataset:
    images: tuple[FormatImage, ...]
    labels: tuple[str, ...] = field(default=("pedestrian",))
    not_labelled: tuple[str, ...] = ()  # images the export lists that nobody labelled
    image_sha256: Mapping[str, str] = field(default_factory=dict)  # name -> sha256, where the export carries images
    voc_origin: int | None = None  # the pixel origin a VOC file was read with
    left_out: Mapping[str, int] = field(default_factory=dict)  # shapes that are not boxes, by kind


def _round(value: float) -> float:
    return round(float(value), PRECISION)


def finite_number(value: object) -> bool:
    """A JSON number a float holds finitely (not a bool, not NaN or infinity, not an integer
    of hundreds of digits, which `float()` refuses with OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_id(value: object) -> bool:
    """An id an export may use: an integer or a string (not a list or an object)."""
    return isinstance(value, int | str) and not isinstance(value, bool)


def checked_box(
    box: FormatBox, *, width: float, height: float, clip: bool | None, where: str, problems: list[str]
) -> FormatBox | None:
    """`box` rounded to PRECISION and checked against a width x height image.

    Non-finite coordinates and boxes with no area are always problems; a box reaching
    outside the image is a problem unless `clip`, which clips it (and drops it when
    nothing is left inside). `clip=None` leaves the bounds unchecked, for a caller that
    checks the stated size first (`checked_image` then).
    """
    coordinates = (box.x1, box.y1, box.x2, box.y2)
    if not all(finite_number(value) for value in coordinates):
        problems.append(f"{where}: coordinates must be finite numbers, got {list(coordinates)}")
        return None
    x1, y1, x2, y2 = (_round(value) for value in coordinates)
    if x2 <= x1 or y2 <= y1:
        problems.append(f"{where}: the box has no area ({x1}, {y1}, {x2}, {y2})")
        return None
    if clip is not None and (x1 < 0 or y1 < 0 or x2 > width or y2 > height):
        if not clip:
            problems.append(f"{where}: the box ({x1}, {y1}, {x2}, {y2}) reaches outside the {width}x{height} image")
            return None
        x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
        if x2 <= x1 or y2 <= y1:
            return None
    return replace(box, x1=x1, y1=y1, x2=x2, y2=y2)


def checked_image(image: FormatImage, *, clip: bool | None, problems: list[str]) -> FormatImage:
    """`image` with each box checked by `checked_box` against the image's size. An image
    without boxes may leave its size unknown (0 x 0)."""
    if image.width == 0 and image.height == 0 and not image.boxes:
        return image
    if not (isinstance(image.width, int) and isinstance(image.height, int) and image.width > 0 and image.height > 0):
        problems.append(f"{image.file_name}: width and height must be positive integers")
        return image
    boxes = []
    for index, box in enumerate(image.boxes):
        where = f"{image.file_name} box {index + 1}"
        checked = checked_box(box, width=image.width, height=image.height, clip=clip, where=where, problems=problems)
        if checked is not None:
            boxes.append(checked)
    return replace(image, boxes=tuple(boxes))


def dataset_finish(
    images: list[FormatImage], labels: Iterable[str], *, clip: bool | None, problems: list[str], **extra
) -> Dataset:
    """The dataset, once every box is checked (`checked_image`) and no image appears twice for
    the same author; FormatError listing every problem otherwise."""
    checked = [checked_image(image, clip=clip, problems=problems) for image in images]
    # One image appears once per author (an export with authors) or once (one without).
    keys = Counter((image.file_name, image.author, image.state) for image in checked)
    problems.extend(f"{name}: appears more than once" for (name, _, _), count in keys.items() if count > 1)
    if problems:
        raise FormatError("The annotations have problems", problems)
    return Dataset(images=tuple(checked), labels=tuple(labels), **extra)


# --- COCO -------------------------------------------------------------------------------


def coco_read(data: bytes | str | Mapping, *, clip: bool | None = False) -> Dataset:
    """COCO detection JSON: `images`, `annotations` (bbox as [x, y, width, height]), `categories`."""
    document = json_document(data) if not isinstance(data, Mapping) else data
    problems: list[str] = []
    if not isinstance(document, Mapping) or not isinstance(document.get("images"), list):
        raise FormatError("Not a COCO file: it needs an 'images' list")
    categories = {}
    for category in document.get("categories") or []:
        if (
            not isinstance(category, Mapping)
            or not _is_id(category.get("id"))
            or not isinstance(category.get("name"), str)
        ):
            problems.append(f"category {category!r}: needs an id and a name")
            continue
        categories[category["id"]] = category["name"]
    images: dict = {}
    for entry in document["images"]:
        if not isinstance(entry, Mapping) or not _is_id(entry.get("id")) or not isinstance(entry.get("file_name"), str):
            problems.append(f"image {entry!r}: needs an id and a file_name")
            continue
        images[entry["id"]] = {"entry": entry, "boxes": []}
    for index, annotation in enumerate(document.get("annotations") or []):
        where = f"annotation {annotation.get('id', index + 1) if isinstance(annotation, Mapping) else index + 1}"
        if not isinstance(annotation, Mapping):
            problems.append(f"{where}: not an object")
            continue
        if not _is_id(annotation.get("image_id")) or annotation.get("image_id") not in images:
            problems.append(f"{where}: unknown image_id {annotation.get('image_id')!r}")
            continue
        if not _is_id(annotation.get("category_id")) or annotation.get("category_id") not in categories:
            problems.append(f"{where}: unknown category_id {annotation.get('category_id')!r}")
            continue
        bbox = annotation.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
            problems.append(f"{where}: bbox must be four numbers [x, y, width, height]")
            continue
        # not finite (NaN, infinity, an integer of hundreds of digits): checked_box names it
        x, y, w, h = (float(v) if finite_number(v) else math.inf for v in bbox)
        attributes = annotation.get("attributes") if isinstance(annotation.get("attributes"), Mapping) else {}
        images[annotation["image_id"]]["boxes"].append(
            FormatBox(
                x1=x,
                y1=y,
                x2=_round(x + w) if math.isfinite(x + w) else x + w,
                y2=_round(y + h) if math.isfinite(y + h) else y + h,
                label=categories[annotation["category_id"]],
                is_ignored=bool(annotation.get("iscrowd", 0)),
                is_occluded=bool(attributes.get("occluded", False)),
                is_truncated=bool(attributes.get("truncated", False)),
            )
        )
    result = []
    for item in images.values():
        entry = item["entry"]
        unknown = entry.get("width") is None and entry.get("height") is None and not item["boxes"]
        result.append(
            FormatImage(
                file_name=entry["file_name"],
                width=0 if unknown else entry.get("width"),
                height=0 if unknown else entry.get("height"),
                boxes=tuple(item["boxes"]),
            )
        )
    names = Counter(image.file_name for image in result)
    twice = sorted(name for name, count in names.items() if count > 1)
    if twice:
        raise FormatError(
            "Some images appear more than once; an export that writes one image entry per annotation "
            "(Label Studio's COCO export does, for tasks several people labelled) loses who made each: "
            "import Label Studio's JSON export instead",
            twice,
        )
    labels = list(dict.fromkeys(categories.values()))
    return dataset_finish(result, labels, clip=clip, problems=problems)


def coco_write(dataset: Dataset, *, info: Mapping | None = None) -> dict:
    """The dataset as one COCO dict. For large exports use `coco_iter_json`."""
    images = lambda: iter(dataset.images)  # noqa: E731
    return json.loads("".join(coco_iter_json(images=images, annotated=images, labels=dataset.labels, info=info)))


def coco_iter_json(
    *,
    images: Callable[[], Iterable[FormatImage]],
    annotated: Callable[[], Iterable[FormatImage]],
    labels: Iterable[str],
    info: Mapping | None = None,
) -> Iterator[str]:
    """COCO JSON text in pieces, so that an export never holds the whole file.

    `images()` gives the images for the `images` array (their boxes are not read) and
    `annotated()` the same images, in the same order, with their boxes, for `annotations`.
    Images are numbered from 1 in that order, categories from 1 in `labels` order.
    """
    category_ids = {label: index + 1 for index, label in enumerate(labels)}
    categories = [{"id": cid, "name": name, "supercategory": "person"} for name, cid in category_ids.items()]
    yield '{"info": ' + json.dumps(dict(info or {})) + ', "categories": ' + json.dumps(categories)
    yield ', "images": ['
    for image_id, image in enumerate(images(), start=1):
        entry = {"id": image_id, "file_name": image.file_name, "width": image.width, "height": image.height}
        yield ("" if image_id == 1 else ", ") + json.dumps(entry)
    yield '], "annotations": ['
    annotation_id = 0
    for image_id, image in enumerate(annotated(), start=1):
        pieces = []
        for box in image.boxes:
            annotation_id += 1
            width, height = _round(box.x2 - box.x1), _round(box.y2 - box.y1)
            pieces.append(
                ("" if annotation_id == 1 else ", ")
                + f'{{"id": {annotation_id}, "image_id": {image_id}, "category_id": {category_ids[box.label]}, '
                f'"bbox": [{box.x1!r}, {box.y1!r}, {width!r}, {height!r}], "area": {_round(width * height)!r}, '
                f'"iscrowd": {int(box.is_ignored)}, "attributes": {{"occluded": {_json_bool(box.is_occluded)}, '
                f'"truncated": {_json_bool(box.is_truncated)}'
                + ("" if box.support is None else f', "support": {int(box.support)}')
                + "}}"
            )
        if pieces:
            yield "".join(pieces)
    yield "]}"


def _json_bool(value: bool) -> str:
    return "true" if value else "false"


# --- YOLO -------------------------------------------------------------------------------


def yolo_label_text(image: FormatImage, *, labels: list[str]) -> str:
    """One YOLO label file: `class cx cy w h` per box, normalised; ignore regions left out."""
    kept = [box for box in image.boxes if not box.is_ignored]
    if not kept:
        return ""
    boxes = np.array([[box.x1, box.y1, box.x2, box.y2] for box in kept], dtype=np.float64)
    normalised = xyxy_to_yolo(boxes, width=image.width, height=image.height)
    lines = [
        f"{labels.index(box.label)} " + " ".join(repr(float(v)) for v in row)
        for box, row in zip(kept, normalised, strict=True)
    ]
    return "\n".join(lines) + "\n"


def yolo_data_yaml(*, labels: Iterable[str], splits: Mapping[str, str], path: str | None = None) -> str:
    """Ultralytics' data.yaml: one image folder per split and the class names.

    Without `path`, ultralytics takes the folder holding data.yaml as the dataset root.
    """
    lines = [f"path: {path}"] if path else []
    lines += [f"{split}: {folder}" for split, folder in splits.items()]
    lines.append("names:")
    lines += [f"  {index}: {json.dumps(name)}" for index, name in enumerate(labels)]
    return "\n".join(lines) + "\n"


def yolo_class_lines(text: bytes | str) -> list[str]:
    """Class names from darknet's obj.names or Label Studio's classes.txt: one per line."""
    text = text.decode("utf-8") if isinstance(text, bytes) else text
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise FormatError("The class list (classes.txt or obj.names) is empty")
    return names


def yolo_names(data_yaml: bytes | str) -> list[str]:
    """Class names from a data.yaml: `names:` as a mapping (0: person) or a list ([person])."""
    text = data_yaml.decode("utf-8") if isinstance(data_yaml, bytes) else data_yaml
    inline = re.search(r"^names:\s*\[(.*)\]\s*$", text, flags=re.M)
    if inline:
        return [name.strip().strip("'\"") for name in inline.group(1).split(",") if name.strip()]
    block = re.search(r"^names:\s*\n((?:[ \t]+.*\n?)+)", text, flags=re.M)
    if not block:
        raise FormatError("data.yaml has no 'names'")
    names = {}
    for line in block.group(1).splitlines():
        item = re.match(r"\s+(?:(\d+)\s*:|-)\s*(.+?)\s*$", line)
        if item:
            key = int(item.group(1)) if item.group(1) is not None else len(names)
            names[key] = item.group(2).strip().strip("'\"")
    if sorted(names) != list(range(len(names))):
        raise FormatError("data.yaml 'names' must be numbered 0, 1, 2, ...")
    return [names[index] for index in range(len(names))]


def yolo_read(
    *,
    names: list[str],
    label_files: Mapping[str, bytes | str],
    sizes: Mapping[str, tuple[int, int]],
    clip: bool | None = False,
) -> Dataset:
    """YOLO labels: `label_files` maps an image's file name to its .txt; `sizes` gives each
    image's (width, height), which the normalised coordinates need."""
    problems: list[str] = []
    images = []
    for file_name, content in label_files.items():
        if file_name not in sizes:
            problems.append(f"{file_name}: no image of that name")
            continue
        width, height = sizes[file_name]
        text = content.decode("utf-8") if isinstance(content, bytes) else content
        boxes = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            where = f"{file_name} line {number}"
            if len(parts) != 5:
                problems.append(f"{where}: expected 'class cx cy w h'")
                continue
            try:
                cls = int(parts[0])
                values = [float(v) for v in parts[1:]]
            except ValueError:
                problems.append(f"{where}: not numbers")
                continue
            if not 0 <= cls < len(names):
                problems.append(f"{where}: class {cls} is not in data.yaml's names")
                continue
            if not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
                problems.append(f"{where}: coordinates must be finite with positive width and height")
                continue
            x1, y1, x2, y2 = yolo_to_xyxy(np.array([values]), width=width, height=height)[0]
            boxes.append(FormatBox(x1=x1, y1=y1, x2=x2, y2=y2, label=names[cls]))
        images.append(FormatImage(file_name=file_name, width=width, height=height, boxes=tuple(boxes)))
    return dataset_finish(images, names, clip=clip, problems=problems)


# --- Pascal VOC -----------------------------------------------------------------------------


def voc_write(image: FormatImage) -> bytes:
    """One Pascal VOC annotation XML."""
    root = ElementTree.Element("annotation")
    ElementTree.SubElement(root, "filename").text = image.file_name
    size = ElementTree.SubElement(root, "size")
    ElementTree.SubElement(size, "width").text = str(image.width)
    ElementTree.SubElement(size, "height").text = str(image.height)
    ElementTree.SubElement(size, "depth").text = "3"
    for box in image.boxes:
        element = ElementTree.SubElement(root, "object")
        ElementTree.SubElement(element, "name").text = box.label
        ElementTree.SubElement(element, "truncated").text = str(int(box.is_truncated))
        ElementTree.SubElement(element, "occluded").text = str(int(box.is_occluded))
        ElementTree.SubElement(element, "difficult").text = str(int(box.is_ignored))
        bndbox = ElementTree.SubElement(element, "bndbox")
        for tag, value in (("xmin", box.x1 + 1), ("ymin", box.y1 + 1), ("xmax", box.x2), ("ymax", box.y2)):
            ElementTree.SubElement(bndbox, tag).text = _number(_round(value))
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def voc_read(
    files: Mapping[str, bytes],
    *,
    clip: bool | None = False,
    origin: int | None = None,
) -> Dataset:
    """Pascal VOC: one XML per image (`files` maps the XML's name to its bytes).

    `origin` is the number of the first pixel: 1 as the VOC devkit defines it (x1 = xmin - 1,
    x2 = xmax), or 0 as some writers use (x1 = xmin, x2 = xmax). Unset, it is 0 when a box
    starts at 0 (which cannot happen counting from 1) and 1 otherwise; the dataset says
    which was used (`voc_origin`).
    """
    if origin not in (None, 0, 1):
        raise FormatError("The VOC origin must be 0 or 1")
    problems: list[str] = []
    parsed: list[tuple[str, int, int, list[tuple[str, tuple[float, ...], object]]]] = []
    for xml_name, content in files.items():
        # Entity declarations are how XML bombs work; VOC files never need them.
        if b"<!DOCTYPE" in content.upper() or b"<!ENTITY" in content.upper():
            problems.append(f"{xml_name}: DOCTYPE and ENTITY declarations are not accepted")
            continue
        try:
            root = ElementTree.fromstring(content)
        except ElementTree.ParseError as error:
            problems.append(f"{xml_name}: not valid XML ({error})")
            continue
        file_name = (root.findtext("filename") or "").strip()
        try:
            width = int(float(root.findtext("size/width") or 0))
            height = int(float(root.findtext("size/height") or 0))
        except (ValueError, OverflowError):
            problems.append(f"{xml_name}: size must be numbers")
            continue
        if not file_name:
            problems.append(f"{xml_name}: no <filename>")
            continue
        objects = []
        for index, element in enumerate(root.findall("object"), start=1):
            label = (element.findtext("name") or "").strip()
            try:
                corners = tuple(float(element.findtext(f"bndbox/{tag}")) for tag in ("xmin", "ymin", "xmax", "ymax"))
            except (TypeError, ValueError):
                problems.append(f"{xml_name} object {index}: bndbox needs xmin, ymin, xmax, ymax numbers")
                continue
            objects.append((label, corners, element))
        parsed.append((file_name, width, height, objects))
    if origin is None:
        starts_at_zero = any(corners[0] == 0 or corners[1] == 0 for *_, objects in parsed for _, corners, _ in objects)
        origin = 0 if starts_at_zero else 1
    shift = origin
    images, labels = [], []
    for file_name, width, height, objects in parsed:
        boxes = []
        for label, (xmin, ymin, xmax, ymax), element in objects:
            labels.append(label)
            boxes.append(
                FormatBox(
                    x1=_round(xmin - shift),
                    y1=_round(ymin - shift),
                    x2=xmax,
                    y2=ymax,
                    label=label,
                    is_ignored=_flag(element, "difficult"),
                    is_occluded=_flag(element, "occluded"),
                    is_truncated=_flag(element, "truncated"),
                )
            )
        images.append(FormatImage(file_name=file_name, width=width, height=height, boxes=tuple(boxes)))
    return dataset_finish(
        images,
        dict.fromkeys(labels),
        clip=clip,
        problems=problems,
        voc_origin=origin,
    )


def _flag(element, tag: str) -> bool:
    return (element.findtext(tag) or "0").strip() in ("1", "true", "True")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def json_document(data: bytes | str):
    """Parsed JSON, or FormatError saying why it is not."""
    try:
        return json_parse(data)
    except JsonTooDeep as error:
        raise FormatError(str(error)) from error
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, an integer over 4,300 digits
        raise FormatError(f"Not valid JSON: {error}") from error
