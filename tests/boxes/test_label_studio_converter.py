"""Quorum's readers and writers against Label Studio's own converter (label-studio-converter,
from PyPI), on random datasets: every box back, within 1e-6 px (VOC within whole pixels).

Run with `-s` to see the figures: boxes compared and the largest coordinate difference."""

import json

import numpy as np
import pytest
from PIL import Image

from boxes.formats import Dataset, FormatBox, FormatImage, coco_read, coco_write, voc_read, yolo_label_text, yolo_read
from boxes.labelstudio import Task, labelstudio_config, labelstudio_iter_json, labelstudio_read

LABELS = ("pedestrian", "cyclist")
N_IMAGES = 60


def random_dataset(seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    images = []
    for index in range(N_IMAGES):
        width, height = int(rng.integers(64, 1920)), int(rng.integers(48, 1080))
        boxes = []
        for _ in range(int(rng.integers(1, 9))):
            x1, y1 = rng.uniform(0, width - 5), rng.uniform(0, height - 5)
            x2, y2 = rng.uniform(x1 + 2, width), rng.uniform(y1 + 2, height)
            label = LABELS[int(rng.integers(2))]
            boxes.append(FormatBox(round(x1, 3), round(y1, 3), round(x2, 3), round(y2, 3), label))
        images.append(FormatImage(file_name=f"img_{index:03d}.png", width=width, height=height, boxes=tuple(boxes)))
    return Dataset(images=tuple(images), labels=LABELS)


def compare(found: Dataset, expected: Dataset, *, name_of=lambda name: name) -> tuple[int, float]:
    """(boxes compared, largest coordinate difference); fails on a lost or extra box."""
    by_name = {name_of(image.file_name): image for image in found.images}
    count, largest = 0, 0.0
    for image in expected.images:
        back = by_name[image.file_name]
        assert [box.label for box in back.boxes] == [box.label for box in image.boxes], image.file_name
        for a, b in zip(back.boxes, image.boxes, strict=True):
            corners = zip((a.x1, a.y1, a.x2, a.y2), (b.x1, b.y1, b.x2, b.y2), strict=True)
            largest = max(largest, *(abs(u - v) for u, v in corners))
            count += 1
    assert count == sum(len(image.boxes) for image in expected.images)
    return count, largest


def base(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def label_studio_json(dataset: Dataset) -> str:
    tasks = (
        Task(
            image_id=index + 1,
            reference=f"/data/local-files/?d=images/{image.file_name}",
            width=image.width,
            height=image.height,
            annotations=((None, image.boxes, True),),
        )
        for index, image in enumerate(dataset.images)
    )
    return "".join(labelstudio_iter_json(tasks))


@pytest.mark.parametrize("target_format", ["COCO", "YOLO", "VOC"])
def test_our_label_studio_json_through_the_converter(tmp_path, target_format):
    from label_studio_converter import Converter

    dataset = random_dataset(1)
    (tmp_path / "tasks.json").write_text(label_studio_json(dataset))
    converter = Converter(labelstudio_config(LABELS), project_dir=None, download_resources=False)
    out = tmp_path / "out"
    converter.convert(str(tmp_path / "tasks.json"), str(out), target_format, is_dir=False)
    if target_format == "COCO":
        back = coco_read((out / "result.json").read_bytes())
    elif target_format == "YOLO":
        names = (out / "classes.txt").read_text().split()
        sizes = {image.file_name: (image.width, image.height) for image in dataset.images}
        labels = {f"{p.stem}.png": p.read_bytes() for p in (out / "labels").glob("*.txt")}
        back = yolo_read(names=names, label_files=labels, sizes=sizes)
    else:
        back = voc_read({p.name: p.read_bytes() for p in (out / "Annotations").glob("*.xml")}, origin=0)
    count, largest = compare(back, dataset, name_of=base)
    # VOC: whole pixels, x1 truncated (< 1 px), x2 as int(x1) + int(width) (< 2 px)
    assert largest < (2 if target_format == "VOC" else 1e-6), largest
    print(f"\nQuorum labelstudio -> converter {target_format} -> Quorum: {count} boxes, largest {largest:.3g} px")


@pytest.mark.parametrize("source_format", ["coco", "yolo"])
def test_converter_label_studio_json_from_our_exports(tmp_path, source_format):
    from label_studio_converter.imports.coco import convert_coco_to_ls
    from label_studio_converter.imports.yolo import convert_yolo_to_ls

    dataset = random_dataset(2)
    out = tmp_path / "tasks.json"
    if source_format == "coco":
        (tmp_path / "coco.json").write_text(json.dumps(coco_write(dataset)))
        convert_coco_to_ls(str(tmp_path / "coco.json"), str(out), image_root_url="/data/local-files/?d=images/")
    else:
        for folder in ("images", "labels"):
            (tmp_path / "yolo" / folder).mkdir(parents=True)
        (tmp_path / "yolo" / "classes.txt").write_text("\n".join(LABELS) + "\n")
        for image in dataset.images:
            Image.new("RGB", (image.width, image.height)).save(tmp_path / "yolo" / "images" / image.file_name)
            text = yolo_label_text(image, labels=list(LABELS))
            (tmp_path / "yolo" / "labels" / f"{image.file_name[:-4]}.txt").write_text(text)
        convert_yolo_to_ls(str(tmp_path / "yolo"), str(out), image_ext=".png")
    back = labelstudio_read(out.read_bytes())
    count, largest = compare(back, dataset, name_of=base)
    assert largest < 1e-6, largest
    print(
        f"\nQuorum {source_format} -> converter -> Label Studio JSON -> Quorum: {count} boxes, largest {largest:.3g} px"
    )
