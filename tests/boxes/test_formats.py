"""boxes.formats: exact round trips, independent readers agree, bad input is listed."""

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from boxes.formats import (
    Dataset,
    FormatBox,
    FormatError,
    FormatImage,
    coco_read,
    coco_write,
    voc_read,
    voc_write,
    yolo_data_yaml,
    yolo_label_text,
    yolo_names,
    yolo_read,
)
from boxes.labelstudio import labelstudio_read

LABELS = ("pedestrian", "cyclist")


def random_dataset(seed: int, *, flags: bool = True, n_images: int = 12) -> Dataset:
    rng = np.random.default_rng(seed)
    images = []
    for index in range(n_images):
        width, height = int(rng.integers(200, 2000)), int(rng.integers(200, 1500))
        boxes = []
        for _ in range(int(rng.integers(0, 8))):
            x1, y1 = rng.uniform(0, width - 5), rng.uniform(0, height - 5)
            x2, y2 = rng.uniform(x1 + 1, width), rng.uniform(y1 + 1, height)
            boxes.append(
                FormatBox(
                    x1=round(x1, 3),
                    y1=round(y1, 3),
                    x2=round(x2, 3),
                    y2=round(y2, 3),
                    label=LABELS[int(rng.integers(2))],
                    is_ignored=flags and bool(rng.random() < 0.1),
                    is_occluded=flags and bool(rng.random() < 0.3),
                    is_truncated=flags and bool(rng.random() < 0.2),
                )
            )
        images.append(FormatImage(file_name=f"img_{index:03d}.jpg", width=width, height=height, boxes=tuple(boxes)))
    return Dataset(images=tuple(images), labels=LABELS)


@pytest.mark.parametrize("seed", range(5))
def test_coco_round_trip_is_exact(seed):
    dataset = random_dataset(seed)
    assert coco_read(json.dumps(coco_write(dataset))) == dataset


@pytest.mark.parametrize("seed", range(5))
def test_yolo_round_trip_is_exact(seed):
    # YOLO carries label and box only
    dataset = random_dataset(seed, flags=False)
    names = yolo_names(yolo_data_yaml(labels=dataset.labels, splits={"train": "images/train"}))
    label_files = {image.file_name: yolo_label_text(image, labels=list(dataset.labels)) for image in dataset.images}
    sizes = {image.file_name: (image.width, image.height) for image in dataset.images}
    assert yolo_read(names=names, label_files=label_files, sizes=sizes) == dataset


@pytest.mark.parametrize("seed", range(5))
def test_voc_round_trip_is_exact(seed):
    dataset = random_dataset(seed)
    files = {f"{image.file_name}.xml": voc_write(image) for image in dataset.images}
    back = voc_read(files)
    assert back.images == dataset.images
    assert set(back.labels) <= set(LABELS)


@pytest.mark.parametrize("seed", range(3))
def test_pycocotools_reads_our_coco_the_same_way(seed, tmp_path):
    dataset = random_dataset(seed)
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco_write(dataset)))
    coco = COCO(str(path))
    for image_id, image in enumerate(dataset.images, start=1):
        info = coco.loadImgs(image_id)[0]
        assert (info["file_name"], info["width"], info["height"]) == (image.file_name, image.width, image.height)
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        expected = [[b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1] for b in image.boxes]
        np.testing.assert_allclose(
            [a["bbox"] for a in annotations] or np.zeros((0, 4)), expected or np.zeros((0, 4)), atol=1e-9
        )
        assert [bool(a["iscrowd"]) for a in annotations] == [b.is_ignored for b in image.boxes]
        names = [coco.loadCats(a["category_id"])[0]["name"] for a in annotations]
        assert names == [b.label for b in image.boxes]


def test_ultralytics_reads_our_yolo_labels_the_same_way(tmp_path):
    from PIL import Image
    from ultralytics.data.utils import verify_image_label

    dataset = random_dataset(7, flags=False, n_images=3)
    for image in dataset.images:
        image_path = tmp_path / image.file_name
        Image.new("RGB", (image.width, image.height)).save(image_path)
        label_path = tmp_path / f"{image.file_name}.txt"
        label_path.write_text(yolo_label_text(image, labels=list(LABELS)))
        result = verify_image_label((str(image_path), str(label_path), "", False, len(LABELS), 0, 3, False))
        _, labels, shape, *_rest, message = result
        assert message == "" or "WARNING" not in message
        assert shape == (image.height, image.width)
        assert len(labels) == len(image.boxes)


COCO_BASE = {
    "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}],
    "categories": [{"id": 1, "name": "pedestrian"}],
}


@pytest.mark.parametrize(
    ("bbox", "problem"),
    [
        ([float("nan"), 0, 10, 10], "coordinates must be finite"),
        ([0, 0, float("inf"), 10], "coordinates must be finite"),
        ([10, 10, -5, 10], "the box has no area"),
        ([95, 0, 10, 10], "reaches outside the 100x50 image"),
        (["1", 0, 10, 10], "bbox must be four numbers"),
    ],
)
def test_bad_coco_boxes_are_listed(bbox, problem):
    document = {**COCO_BASE, "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": bbox}]}
    with pytest.raises(FormatError) as error:
        coco_read(json.dumps(document))
    assert len(error.value.problems) == 1
    assert problem in error.value.problems[0]
    assert error.value.problems[0].startswith(("a.jpg box 1", "annotation 7"))


def test_clip_clips_instead_of_refusing():
    document = {**COCO_BASE, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [90, -5, 20, 20]}]}
    dataset = coco_read(json.dumps(document), clip=True)
    box = dataset.images[0].boxes[0]
    assert (box.x1, box.y1, box.x2, box.y2) == (90.0, 0.0, 100.0, 15.0)


def test_coco_structure_problems_are_all_listed():
    document = {
        **COCO_BASE,
        "annotations": [
            {"id": 1, "image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1]},
            {"id": 2, "image_id": 1, "category_id": 5, "bbox": [0, 0, 1, 1]},
        ],
    }
    with pytest.raises(FormatError) as error:
        coco_read(json.dumps(document))
    assert error.value.problems == ["annotation 1: unknown image_id 9", "annotation 2: unknown category_id 5"]
    with pytest.raises(FormatError, match="Not valid JSON"):
        coco_read(b"{not json")
    with pytest.raises(FormatError, match="needs an 'images' list"):
        coco_read(b"[]")


def test_voc_refuses_entity_declarations_and_bad_xml():
    bomb = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><annotation>&lol;</annotation>'
    with pytest.raises(FormatError) as error:
        voc_read({"bomb.xml": bomb, "broken.xml": b"<annotation><filename>"})
    assert error.value.problems[0] == "bomb.xml: DOCTYPE and ENTITY declarations are not accepted"
    assert error.value.problems[1].startswith("broken.xml: not valid XML")


def test_yolo_names_in_every_form():
    assert yolo_names("names:\n  0: person\n  1: car\n") == ["person", "car"]
    assert yolo_names("names: [person, 'car']\n") == ["person", "car"]
    assert yolo_names("path: .\nnames:\n  - person\n  - car\ntrain: x\n") == ["person", "car"]
    with pytest.raises(FormatError):
        yolo_names("train: images\n")


def test_yolo_bad_lines_are_listed():
    with pytest.raises(FormatError) as error:
        yolo_read(
            names=["pedestrian"],
            label_files={"a.jpg": "0 0.5 0.5 0.1\n3 0.5 0.5 0.1 0.1\n0 nan 0.5 0.1 0.1\n", "b.jpg": ""},
            sizes={"a.jpg": (100, 100)},
        )
    assert error.value.problems == [
        "a.jpg line 1: expected 'class cx cy w h'",
        "a.jpg line 2: class 3 is not in data.yaml's names",
        "a.jpg line 3: coordinates must be finite with positive width and height",
        "b.jpg: no image of that name",
    ]


def test_label_studio_export_is_read_in_pixels():
    tasks = [
        {
            "id": 1,
            "data": {"image": "/data/upload/3/street_001.jpg"},
            "annotations": [
                {
                    "result": [
                        {
                            "type": "rectanglelabels",
                            "original_width": 1000,
                            "original_height": 500,
                            "value": {
                                "x": 10,
                                "y": 20,
                                "width": 5,
                                "height": 30,
                                "rotation": 0,
                                "rectanglelabels": ["pedestrian"],
                            },
                        }
                    ]
                }
            ],
        },
        {"id": 2, "data": {"image": "s3://bucket/empty.jpg"}, "annotations": [{"result": []}]},
    ]
    dataset = labelstudio_read(json.dumps(tasks))
    first, second = dataset.images
    # the path as the export gives it; imports match it to an image (transfer.imports.ImageIndex)
    assert first.file_name == "data/upload/3/street_001.jpg" and (first.width, first.height) == (1000, 500)
    assert first.boxes == (FormatBox(x1=100.0, y1=100.0, x2=150.0, y2=250.0, label="pedestrian"),)
    assert second.file_name == "empty.jpg" and second.boxes == ()
    assert dataset.labels == ("pedestrian",)
