"""Label Studio's JSON export, read and written.

A Label Studio export is a list of tasks. Each task names its image in `data.image` (a
path such as `/data/upload/3/e1deacd5-street_a.png`, or `/data/local-files/?d=images/a.png`)
and holds `annotations`, one per person, each with `completed_by` (a Label Studio user id,
sometimes an object with an email; `created_username` carries " email, id" in recent
versions), `was_cancelled` for a skip and `ground_truth` for the reference, and
`predictions` by models. Boxes are `rectanglelabels` results in percent of the image
(`original_width` x `original_height` pixels, upright, as Label Studio shows it).

Every annotation is read, with its author; a cancelled one as a skip; a task without
annotations is listed as not labelled, never as an image without pedestrians.
"""

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, unquote, urlsplit

from boxes.formats import (
    CANCELLED,
    LABELLED,
    MAX_SIDE,
    PREDICTION,
    Author,
    Dataset,
    FormatBox,
    FormatError,
    FormatImage,
    dataset_finish,
    json_document,
)

JSON_MIN_REFUSAL = (
    "This is Label Studio's JSON-MIN export: it keeps one annotation per task and drops who made "
    "it, skipped annotations and unlabelled tasks. Export 'JSON' from Label Studio instead "
    "(Export, then JSON)."
)
# Label Studio's default object detection template: <RectangleLabels name="label" toName="image">.
FROM_NAME, TO_NAME = "label", "image"


def reference_name(reference: str) -> str:
    """The file path an image reference names: `/data/upload/3/a.png` -> `data/upload/3/a.png`,
    `/data/local-files/?d=images/a.png` -> `images/a.png`, `s3://bucket/x/a.png` -> `x/a.png`,
    a URL -> its path; without a leading slash, unquoted."""
    parts = urlsplit(reference)
    local = parse_qs(parts.query).get("d")
    path = local[0] if local else parts.path
    return unquote(path).replace("\\", "/").lstrip("/")


def _is_json_min(tasks: list) -> bool:
    """JSON-MIN rows are flat: the image and the results sit at the top, with no `data`."""
    rows = [task for task in tasks if isinstance(task, Mapping)]
    return (
        bool(rows)
        and all("data" not in row for row in rows)
        and any("annotation_id" in row or "annotator" in row or ("image" in row and "id" in row) for row in rows)
    )


def _author(annotation: Mapping) -> Author | None:
    by = annotation.get("completed_by")
    email = ""
    if isinstance(by, Mapping):
        email = by.get("email") if isinstance(by.get("email"), str) else ""
        by = by.get("id")
    created = annotation.get("created_username")
    if not email and isinstance(created, str):
        # " anna@example.com, 7": the email, then the user id
        email = next((part.strip() for part in created.split(",") if "@" in part), "")
    if isinstance(by, bool) or not isinstance(by, int | str) or str(by).strip() == "":
        return Author(key=email, email=email) if email else None
    return Author(key=str(by).strip(), email=email.strip())


def _image_reference(task: Mapping) -> str:
    data = task["data"]
    reference = data.get("image")
    if not isinstance(reference, str):
        # a template naming its image field otherwise ($img, $photo): the one string field
        strings = [value for value in data.values() if isinstance(value, str)]
        reference = strings[0] if len(strings) == 1 else ""
    return reference


@dataclass
class _Results:
    width: int | None = None
    height: int | None = None
    boxes: list[FormatBox] | None = None


def _results(results: object, *, where: str, problems: list[str], left_out: dict[str, int]) -> _Results:
    """The boxes of one annotation's or prediction's results, in pixels."""
    read = _Results(boxes=[])
    if not isinstance(results, list):
        problems.append(f"{where}: 'result' must be a list")
        return read
    labels_by_id = {
        result.get("id"): (result.get("value") or {}).get("labels")
        for result in results
        if isinstance(result, Mapping) and result.get("type") == "labels" and isinstance(result.get("value"), Mapping)
    }
    for index, result in enumerate(results, start=1):
        if not isinstance(result, Mapping):
            problems.append(f"{where} result {index}: not an object")
            continue
        kind = result.get("type")
        if kind not in ("rectanglelabels", "rectangle"):
            if kind != "labels" or result.get("id") not in labels_by_id or "x" not in (result.get("value") or {}):
                left_out[str(kind)] = left_out.get(str(kind), 0) + 1
            continue
        value = result.get("value") if isinstance(result.get("value"), Mapping) else {}
        at = f"{where} result {index}"
        try:
            width, height = int(result["original_width"]), int(result["original_height"])
            x, y, w, h = (float(value[key]) for key in ("x", "y", "width", "height"))
            names = value.get("rectanglelabels") if kind == "rectanglelabels" else labels_by_id.get(result.get("id"))
            rotation = float(value.get("rotation") or 0)
            if not 0 < width <= MAX_SIDE or not 0 < height <= MAX_SIDE:
                raise ValueError("size out of range")
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
            problems.append(f"{at}: needs original_width/height and value x, y, width, height, rectanglelabels")
            continue
        if rotation != 0:
            problems.append(f"{at}: rotated boxes are not supported")
            continue
        if not isinstance(names, list) or len(names) != 1 or not isinstance(names[0], str):
            problems.append(f"{at}: exactly one label per box")
            continue
        if read.width is not None and (read.width, read.height) != (width, height):
            problems.append(f"{at}: original size {width}x{height} differs from {read.width}x{read.height}")
            continue
        read.width, read.height = width, height
        score = result.get("score")
        read.boxes.append(
            FormatBox(
                x1=x * width / 100,
                y1=y * height / 100,
                x2=(x + w) * width / 100,
                y2=(y + h) * height / 100,
                label=names[0],
                score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
            )
        )
    return read


def labelstudio_read(data: bytes | str | list, *, clip: bool | None = False) -> Dataset:
    """A Label Studio JSON export: every annotation of every task, with its author (see the
    module's notes). JSON-MIN is recognised and refused with what to export instead."""
    tasks = json_document(data) if not isinstance(data, list) else data
    if not isinstance(tasks, list):
        raise FormatError("Not a Label Studio JSON export: expected a list of tasks")
    if _is_json_min(tasks):
        raise FormatError(JSON_MIN_REFUSAL)
    problems: list[str] = []
    left_out: dict[str, int] = {}
    images: list[FormatImage] = []
    not_labelled: list[str] = []
    for number, task in enumerate(tasks, start=1):
        if not isinstance(task, Mapping) or not isinstance(task.get("data"), Mapping):
            problems.append(f"task {number}: not a task object (no 'data')")
            continue
        task_id = str(task.get("id", number))
        file_name = reference_name(_image_reference(task))
        if not file_name:
            problems.append(f"task {task_id}: no image reference in data.image")
            continue
        # "completions" is what Label Studio called annotations before version 1.0
        annotations = task.get("annotations", task.get("completions")) or []
        predictions = task.get("predictions") or []
        if not isinstance(annotations, list) or not isinstance(predictions, list):
            problems.append(f"task {task_id}: annotations and predictions must be lists")
            continue
        if not annotations:
            not_labelled.append(file_name)
        entries = [(annotation, False) for annotation in annotations] + [(p, True) for p in predictions]
        for index, (entry, is_prediction) in enumerate(entries, start=1):
            entry_id = entry.get("id", index) if isinstance(entry, Mapping) else index
            where = f"task {task_id} {'prediction' if is_prediction else 'annotation'} {entry_id}"
            if not isinstance(entry, Mapping):
                problems.append(f"{where}: not an object")
                continue
            read = _results(entry.get("result") or [], where=where, problems=problems, left_out=left_out)
            if is_prediction:
                score = entry.get("score")
                default = float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None
                boxes = tuple(box if box.score is not None else _with_score(box, default) for box in read.boxes)
                state, author, model = PREDICTION, None, str(entry.get("model_version") or "")
            else:
                boxes, model = tuple(read.boxes), ""
                state = CANCELLED if entry.get("was_cancelled") else LABELLED
                author = _author(entry)
            images.append(
                FormatImage(
                    file_name=file_name,
                    # an annotation with no box carries no size: 0 marks it unknown
                    width=read.width or 0,
                    height=read.height or 0,
                    boxes=boxes,
                    author=author,
                    state=state,
                    is_ground_truth=bool(entry.get("ground_truth")) and not is_prediction,
                    model=model,
                    task=task_id,
                )
            )
    labels = dict.fromkeys(box.label for image in images for box in image.boxes)
    return dataset_finish(
        images, labels, clip=clip, problems=problems, not_labelled=tuple(not_labelled), left_out=left_out
    )


def _with_score(box: FormatBox, score: float | None) -> FormatBox:
    return replace(box, score=score)


# --- writing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One image for a Label Studio export, with what goes in it."""

    image_id: int
    reference: str  # data.image
    width: int
    height: int
    annotations: tuple[tuple[Author | None, tuple[FormatBox, ...], bool], ...] = ()  # (author, boxes, ground truth)
    predictions: tuple[tuple[str, tuple[FormatBox, ...]], ...] = ()  # (model version, boxes)
    meta: Mapping | None = None


def _result(box: FormatBox, index: int, *, width: int, height: int) -> dict:
    result = {
        "id": f"q{index}",
        "type": "rectanglelabels",
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {
            "x": box.x1 * 100 / width,
            "y": box.y1 * 100 / height,
            "width": (box.x2 - box.x1) * 100 / width,
            "height": (box.y2 - box.y1) * 100 / height,
            "rotation": 0,
            "rectanglelabels": [box.label],
        },
    }
    if box.score is not None:
        result["score"] = box.score
    return result


def labelstudio_task(task: Task, *, first_annotation_id: int = 1) -> dict:
    """One task as Label Studio imports it (pre-annotations: `annotations` and `predictions`).

    Ignore regions are left out (Label Studio has no such thing); percentages are exact
    fractions of the image, so reading them back gives the same pixels.
    """
    annotations = []
    for offset, (author, boxes, is_ground_truth) in enumerate(task.annotations):
        kept = [box for box in boxes if not box.is_ignored]
        annotation = {
            "id": first_annotation_id + offset,
            "result": [_result(box, i + 1, width=task.width, height=task.height) for i, box in enumerate(kept)],
            "was_cancelled": False,
            "ground_truth": is_ground_truth,
        }
        if author is not None:
            # Label Studio's own export shape: the user id, or an object with the email by
            # which Label Studio finds its user when the file is imported.
            key = int(author.key) if author.key.isdigit() else author.key
            annotation["completed_by"] = {"id": key, "email": author.email} if author.email else key
        annotations.append(annotation)
    predictions = []
    for model, boxes in task.predictions:
        scores = [box.score for box in boxes if box.score is not None]
        predictions.append(
            {
                "model_version": model,
                "score": min(scores) if scores else None,
                "result": [_result(box, i + 1, width=task.width, height=task.height) for i, box in enumerate(boxes)],
            }
        )
    document = {"id": task.image_id, "data": {TO_NAME: task.reference}, "annotations": annotations}
    if predictions:
        document["predictions"] = predictions
    if task.meta:
        document["meta"] = dict(task.meta)
    return document


def labelstudio_iter_json(tasks: Iterable[Task]) -> Iterator[str]:
    """A Label Studio JSON export in pieces (a list of tasks), never held whole."""
    yield "["
    annotation_id = 1
    for number, task in enumerate(tasks):
        yield ("" if number == 0 else ",\n") + json.dumps(labelstudio_task(task, first_annotation_id=annotation_id))
        annotation_id += len(task.annotations)
    yield "]\n"


def labelstudio_config(labels: Iterable[str]) -> str:
    """The labelling config the export's results fit (Label Studio's object detection template)."""
    values = "".join(f'<Label value="{label}"/>' for label in labels)
    return (
        f'<View><Image name="{TO_NAME}" value="${TO_NAME}"/>'
        f'<RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}">{values}</RectangleLabels></View>'
    )
