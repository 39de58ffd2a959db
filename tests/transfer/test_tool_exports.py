"""Exports from Label Studio and CVAT as those tools write them: images matched by the names
the tools give them, every annotation credited to its author, nothing invented, clear
refusals that write nothing, and exports those tools read back."""

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.models import Assignment, AssignmentState, Suggestion
from datasets.ingest import IncomingImage, image_ingest
from datasets.models import Image
from groundtruth.models import Annotation, AnnotationKind, Box
from tests import images
from tests.corpus.make import zip_bytes
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

# name -> (upright width, upright height); portrait.jpg is stored 120x80 and turned by EXIF 6
NAMES = {"street_a.png": (200, 100), "street_b.png": (160, 120), "street_c.png": (90, 60), "empty_scene.png": (64, 48)}
PORTRAIT = ("portrait.jpg", (80, 120))
PREFIX = "/data/upload/7/"


@pytest.fixture
def scene(people):
    uploads = []
    for seed, (name, size) in enumerate(NAMES.items()):
        data = images.image_bytes("PNG", size=size, seed=300 + seed)
        uploads.append(IncomingImage(name=name, file=io.BytesIO(data), size=len(data)))
    portrait = images.exif_rotated_jpeg(size=(120, 80), orientation=6)
    uploads.append(IncomingImage(name=PORTRAIT[0], file=io.BytesIO(portrait), size=len(portrait)))
    image_ingest(project=people.project, uploads=uploads, user=None)
    people.annotator.email = "anna@example.com"
    people.annotator.save()
    bea = MembershipFactory(project=people.project, user__username="bea", user__email="").user
    found = {image.original_name: image for image in Image.objects.filter(project=people.project)}
    return found, bea


@pytest.fixture
def admin_api(api_client, people):
    api_client.force_login(people.project_admin)
    return api_client


def post_import(client, project, content, name: str, **fields):
    url = reverse("api-project-import", kwargs={"project_id": project.pk})
    data = {"file": SimpleUploadedFile(name, content), **fields}
    return client.post(url, data, format="multipart")


def get_export(client, project, **params) -> bytes:
    response = client.get(reverse("api-project-export", kwargs={"project_id": project.pk}), params)
    assert response.status_code == 200, response.content if not response.streaming else b""
    return b"".join(response.streaming_content)


def ls_box(box, size, *, label="pedestrian", score=None):
    """A Label Studio rectanglelabels result for pixel box (x1, y1, x2, y2) on an image of `size`."""
    (x1, y1, x2, y2), (width, height) = box, size
    result = {
        "id": f"r{x1}{y1}",
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "origin": "manual",
        "value": {
            "x": x1 * 100 / width,
            "y": y1 * 100 / height,
            "width": (x2 - x1) * 100 / width,
            "height": (y2 - y1) * 100 / height,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }
    if score is not None:
        result["score"] = score
    return result


def ls_task(task_id, name, annotations=(), predictions=()):
    return {
        "id": task_id,
        "annotations": list(annotations),
        "file_upload": f"e1deacd5-{name}",
        "drafts": [],
        "predictions": list(predictions),
        "data": {"image": f"{PREFIX}e1deacd5-{name}"},
        "meta": {},
        "created_at": "2026-11-30T10:00:00.000000Z",
        "inner_id": task_id,
        "total_annotations": len(annotations),
        "cancelled_annotations": sum(1 for a in annotations if a["was_cancelled"]),
        "project": 7,
    }


def ls_annotation(annotation_id, completed_by, results, *, cancelled=False, ground_truth=False, email=None):
    annotation = {
        "id": annotation_id,
        "completed_by": completed_by,
        "result": results,
        "was_cancelled": cancelled,
        "ground_truth": ground_truth,
        "created_at": "2026-11-30T10:05:00.000000Z",
        "lead_time": 12.5,
        "task": 0,
    }
    if email:
        annotation["created_username"] = f" {email}, {completed_by}"
    return annotation


# What each Label Studio user drew, in pixels: (image, author id) -> boxes
DRAWN = {
    ("street_a.png", 1): [(10.5, 20.25, 60.125, 90.0), (120.0, 5.5, 199.75, 99.5)],
    ("street_a.png", 2): [(12.0, 21.0, 58.333, 88.75)],
    ("street_b.png", 1): [(0.0, 0.0, 40.5, 119.0)],
    ("portrait.jpg", 2): [(4.25, 10.5, 70.0, 118.125)],
}


def ls_export(*, two_on_one=True):
    """A Label Studio 1.23 JSON export of the scene: two annotators on street_a, a cancelled
    annotation on street_b, nobody on empty_scene, a model's prediction only on street_c."""
    sizes = {**NAMES, PORTRAIT[0]: PORTRAIT[1]}

    def results(name, author):
        return [ls_box(box, sizes[name]) for box in DRAWN[(name, author)]]

    street_a = [ls_annotation(11, {"id": 1, "email": "anna@example.com"}, results("street_a.png", 1))]
    if two_on_one:
        street_a.append(ls_annotation(12, 2, results("street_a.png", 2)))
    return [
        ls_task(1, "street_a.png", street_a),
        ls_task(
            2,
            "street_b.png",
            [
                ls_annotation(21, 1, results("street_b.png", 1), email="anna@example.com"),
                ls_annotation(22, 2, [], cancelled=True),
            ],
        ),
        ls_task(3, "empty_scene.png"),
        ls_task(
            4,
            "street_c.png",
            predictions=[
                {"model_version": "yolo-v3", "score": 0.71, "result": [ls_box((5, 6, 30, 50), (90, 60), score=0.71)]}
            ],
        ),
        ls_task(5, PORTRAIT[0], [ls_annotation(51, 2, results(PORTRAIT[0], 2))]),
    ]


def current_boxes(username, kind=AnnotationKind.SUBMISSION):
    rows = Box.objects.filter(
        annotation__annotator__username=username, annotation__kind=kind, annotation__is_current=True
    )
    found = {}
    for name, *box in rows.values_list("annotation__image__original_name", "x1", "y1", "x2", "y2").order_by("pk"):
        found.setdefault(name, []).append(tuple(box))
    return found


def largest_difference(found, expected) -> float:
    assert sorted(found) == sorted(expected)
    return max(
        abs(a - b)
        for name in expected
        for box_a, box_b in zip(found[name], expected[name], strict=True)
        for a, b in zip(box_a, box_b, strict=True)
    )


def test_label_studio_export_imports_every_annotation_by_its_author(admin_api, people, scene):
    found, bea = scene
    response = post_import(
        admin_api,
        people.project,
        json.dumps(ls_export()).encode(),
        "project-7-at-2026-11-30.json",
        format="labelstudio",
        annotator_map=json.dumps({"2": "bea"}),
        predictions="suggestions",
    )
    assert response.status_code == 201, response.content
    summary = response.json()
    # per author, what the export holds: anna (by email) 2 tasks, bea (mapped) 2 and one skip
    assert summary["per_annotator"] == {
        "anna": {"submissions": 2, "boxes": 3},
        "bea": {"submissions": 2, "boxes": 2, "skips": 1},
    }
    assert (summary["images"], summary["boxes"], summary["skips"], summary["not_labelled"]) == (3, 5, 1, 2)
    assert summary["matched"] == {"tool_prefix": 4}
    assert {
        "name": f"{PREFIX[1:]}e1deacd5-street_a.png",
        "image_id": found["street_a.png"].pk,
        "by": "tool_prefix",
    } in summary["matches"]
    anna = {name: DRAWN[(name, 1)] for name in ("street_a.png", "street_b.png")}
    bea_drawn = {name: DRAWN[(name, 2)] for name in ("street_a.png", PORTRAIT[0])}
    assert largest_difference(current_boxes("anna"), anna) < 1e-6
    assert largest_difference(current_boxes("bea"), bea_drawn) < 1e-6
    # the EXIF image lands upright
    assert (found[PORTRAIT[0]].width, found[PORTRAIT[0]].height) == PORTRAIT[1]
    # the cancelled annotation is bea's skip; nobody's work is invented for the unlabelled tasks
    skip = Assignment.objects.get(image=found["street_b.png"], annotator=bea)
    assert skip.state == AssignmentState.SKIPPED and skip.annotation is None
    assert not Annotation.objects.filter(image__original_name__in=["empty_scene.png", "street_c.png"]).exists()
    assert not Image.objects.filter(project=people.project, is_gold=True).exists()
    assert Image.objects.get(pk=found["street_a.png"].pk).submitted_count == 2
    # the prediction became the image's suggestion, score kept
    suggestion = Suggestion.objects.get(image=found["street_c.png"])
    assert suggestion.boxes == [{"x1": 5.0, "y1": 6.0, "x2": 30.0, "y2": 50.0, "label": "pedestrian", "score": 0.71}]


def test_an_author_nobody_is_mapped_to_refuses_the_import_and_writes_nothing(admin_api, people, scene):
    response = post_import(admin_api, people.project, json.dumps(ls_export()).encode(), "ls.json", format="labelstudio")
    assert response.status_code == 400
    problems = response.json()["error"]["fields"]["problems"]
    assert any("no Quorum annotator for user 2 (3 annotation(s))" in problem for problem in problems), problems
    assert not Annotation.objects.exists() and not Assignment.objects.exists() and not Suggestion.objects.exists()


def test_one_annotator_for_everything_takes_only_tasks_with_one_annotation(admin_api, people, scene):
    response = post_import(
        admin_api, people.project, json.dumps(ls_export()).encode(), "ls.json", format="labelstudio", annotator="anna"
    )
    assert response.status_code == 400
    problems = response.json()["error"]["fields"]["problems"]
    assert any(problem.startswith("task 1: 2 annotations; with one annotator") for problem in problems), problems
    assert not Annotation.objects.exists()
    # the same export with street_a labelled once imports whole for anna
    tasks = [task for task in ls_export(two_on_one=False)]
    response = post_import(
        admin_api, people.project, json.dumps(tasks).encode(), "ls.json", format="labelstudio", annotator="anna"
    )
    assert response.status_code == 201, response.content
    # street_b's cancelled annotation, now also anna's, is no skip: she labelled it
    assert response.json()["per_annotator"] == {"anna": {"submissions": 3, "boxes": 4}}


def test_gold_takes_the_ground_truth_annotation_and_never_an_unlabelled_task(admin_api, people, scene):
    tasks = ls_export()
    response = post_import(
        admin_api, people.project, json.dumps(tasks).encode(), "ls.json", format="labelstudio", target="gold"
    )
    assert response.status_code == 400
    assert "task 1: 2 annotations and none marked as ground truth" in response.json()["error"]["fields"]["problems"][0]
    tasks[0]["annotations"][1]["ground_truth"] = True
    response = post_import(
        admin_api, people.project, json.dumps(tasks).encode(), "ls.json", format="labelstudio", target="gold"
    )
    assert response.status_code == 201, response.content
    assert response.json()["not_labelled"] == 2
    gold = current_boxes("adam", kind=AnnotationKind.GOLD)
    assert (
        largest_difference({"street_a.png": gold["street_a.png"]}, {"street_a.png": DRAWN[("street_a.png", 2)]}) < 1e-6
    )
    gold_names = set(Image.objects.filter(project=people.project, is_gold=True).values_list("original_name", flat=True))
    assert gold_names == {"street_a.png", "street_b.png", PORTRAIT[0]}


def test_json_min_is_recognised_and_refused_with_what_to_export(admin_api, people, scene):
    json_min = [
        {
            "image": f"{PREFIX}e1deacd5-street_a.png",
            "id": 1,
            "label": [{"x": 5, "y": 20, "width": 25, "height": 70, "rotation": 0, "rectanglelabels": ["pedestrian"], "original_width": 200, "original_height": 100}],
            "annotator": 1,
            "annotation_id": 11,
            "created_at": "2026-11-30T10:05:00.000000Z",
            "updated_at": "2026-11-30T10:05:00.000000Z",
            "lead_time": 12.5,
        }
    ]  # fmt: skip
    response = post_import(
        admin_api, people.project, json.dumps(json_min).encode(), "min.json", format="labelstudio", annotator="anna"
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "JSON-MIN" in message and "Export 'JSON'" in message
    assert not Annotation.objects.exists()


def ls_coco_zip(found, *, portrait_size) -> bytes:
    """Label Studio's COCO export: result.json naming images/<prefix>-<name>, category ids
    from 0, the stored size of the EXIF image, and the images themselves."""
    document = {
        "images": [
            {"width": portrait_size[0], "height": portrait_size[1], "id": 0, "file_name": f"images/e1deacd5-{PORTRAIT[0]}"},
            {"width": 200, "height": 100, "id": 1, "file_name": "images/e1deacd5-street_a.png"},
        ],
        "categories": [{"id": 0, "name": "pedestrian"}],
        "annotations": [
            {"id": 0, "image_id": 0, "category_id": 0, "segmentation": [], "bbox": [4.25, 10.5, 65.75, 107.625], "ignore": 0, "iscrowd": 0, "area": 7076.34},
            {"id": 1, "image_id": 1, "category_id": 0, "segmentation": [], "bbox": [10.5, 20.25, 49.625, 69.75], "ignore": 0, "iscrowd": 0, "area": 3461.34},
        ],
        "info": {"year": 2026, "version": "1.0", "contributor": "Label Studio"},
    }  # fmt: skip
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("result.json", json.dumps(document))
        with found["street_a.png"].file.open("rb") as stored:
            bundle.writestr("images/e1deacd5-street_a.png", stored.read())
    return buffer.getvalue()


def test_the_stored_size_of_an_exif_image_is_named_before_any_box(admin_api, people, scene):
    found, _ = scene
    assert found[PORTRAIT[0]].exif_orientation == 6
    content = ls_coco_zip(found, portrait_size=(120, 80))
    response = post_import(admin_api, people.project, content, "coco.zip", format="coco", annotator="anna")
    assert response.status_code == 400
    problems = response.json()["error"]["fields"]["problems"]
    assert len(problems) == 1, problems
    assert "the file says 120x80, the image is 80x120 upright" in problems[0] and "EXIF orientation 6" in problems[0]
    assert not Annotation.objects.exists()
    # with the upright size the same zip imports, street_a found by its prefix
    response = post_import(
        admin_api,
        people.project,
        ls_coco_zip(found, portrait_size=(80, 120)),
        "coco.zip",
        format="coco",
        annotator="anna",
    )
    assert response.status_code == 201, response.content
    assert response.json()["matched"] == {"tool_prefix": 2}


def test_an_image_is_found_by_its_sha256_when_the_export_carries_it(admin_api, people, scene):
    found, _ = scene
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        document = {
            "images": [{"id": 1, "file_name": "IMG_0001.png", "width": 200, "height": 100}],
            "categories": [{"id": 1, "name": "pedestrian"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}],
        }
        bundle.writestr("annotations.json", json.dumps(document))
        with found["street_a.png"].file.open("rb") as stored:
            stored_bytes = stored.read()
        bundle.writestr("images/IMG_0001.png", stored_bytes)
    if found["street_a.png"].sha256 != __import__("hashlib").sha256(stored_bytes).hexdigest():
        pytest.fail("the stored PNG is not the uploaded file; the test needs the uploaded bytes")
    response = post_import(admin_api, people.project, buffer.getvalue(), "coco.zip", format="coco", annotator="anna")
    assert response.status_code == 201, response.content
    assert response.json()["matches"] == [
        {"name": "IMG_0001.png", "image_id": found["street_a.png"].pk, "by": "sha256"}
    ]


def test_a_name_two_images_answer_to_is_refused_naming_both(admin_api, people):
    uploads = []
    for seed, name in enumerate(["day/a.png", "night/a.png"]):
        data = images.image_bytes("PNG", size=(50, 40), seed=400 + seed)
        uploads.append(IncomingImage(name=name, file=io.BytesIO(data), size=len(data)))
    image_ingest(project=people.project, uploads=uploads, user=None)
    document = {
        "images": [{"id": 1, "file_name": "a.png", "width": 50, "height": 40}],
        "categories": [{"id": 1, "name": "pedestrian"}],
        "annotations": [],
    }
    response = post_import(
        admin_api, people.project, json.dumps(document).encode(), "c.json", format="coco", annotator="anna"
    )
    assert response.status_code == 400
    problem = response.json()["error"]["fields"]["problems"][0]
    assert problem.startswith("a.png: ambiguous") and "(day/a.png)" in problem and "(night/a.png)" in problem
    assert not Annotation.objects.exists()


@pytest.mark.parametrize(
    ("class_file", "label_folder"),
    [("classes.txt", "labels/"), ("obj.names", "obj_train_data/")],
    ids=["label-studio", "darknet-cvat"],
)
def test_yolo_with_a_class_list_instead_of_data_yaml(admin_api, people, scene, class_file, label_folder):
    # Label Studio's YOLO export: classes.txt, notes.json, labels/<prefix>-<stem>.txt (no image here)
    # CVAT's YOLO 1.1: obj.names, obj.data, train.txt, obj_train_data/<stem>.txt
    stem = "e1deacd5-street_a" if class_file == "classes.txt" else "street_a"
    content = zip_bytes(
        {
            class_file: b"pedestrian\n",
            "notes.json": b'{"categories": [{"id": 0, "name": "pedestrian"}]}',
            "train.txt": b"data/obj_train_data/street_a.png\n",
            f"{label_folder}{stem}.txt": b"0 0.25 0.5 0.1 0.4\n",
        }
    )
    response = post_import(admin_api, people.project, content, "yolo.zip", format="yolo", annotator="anna")
    assert response.status_code == 201, response.content
    assert current_boxes("anna") == {"street_a.png": [(40.0, 30.0, 60.0, 70.0)]}
    response = post_import(
        admin_api, people.project, zip_bytes({"labels/a.txt": b""}), "y.zip", format="yolo", annotator="anna"
    )
    assert response.status_code == 400
    assert (
        "data.yaml (Ultralytics), classes.txt (Label Studio) or obj.names"
        in response.json()["error"]["fields"]["problems"][0]
    )


def voc_xml(name, size, boxes) -> bytes:
    """Label Studio's VOC export: truncated integers counted from 0."""
    objects = "".join(
        f"<object><name>pedestrian</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0</difficult>"
        f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for x1, y1, x2, y2 in boxes
    )
    return (
        f"<annotation><folder>images</folder><filename>{name}</filename><source><database>MyDatabase</database>"
        f"</source><size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{objects}</annotation>"
    ).encode()


def test_voc_counted_from_0_is_seen_where_a_box_starts_at_0_and_the_origin_is_said(admin_api, people, scene):
    content = zip_bytes(
        {
            "Annotations/e1deacd5-street_a.xml": voc_xml(
                "e1deacd5-street_a.png", (200, 100), [(0, 20, 60, 90), (120, 5, 199, 99)]
            ),
            "Annotations/e1deacd5-street_b.xml": voc_xml("e1deacd5-street_b.png", (160, 120), [(3, 4, 40, 119)]),
        }
    )
    response = post_import(admin_api, people.project, content, "voc.zip", format="voc", annotator="anna")
    assert response.status_code == 201, response.content
    assert response.json()["voc_origin"] == 0
    assert current_boxes("anna") == {
        "street_a.png": [(0.0, 20.0, 60.0, 90.0), (120.0, 5.0, 199.0, 99.0)],
        "street_b.png": [(3.0, 4.0, 40.0, 119.0)],
    }
    # told it counts from 1, the box at 0 would start at -1: refused, not shifted silently
    response = post_import(admin_api, people.project, content, "voc.zip", format="voc", annotator="bea", voc_origin="1")
    assert response.status_code == 400
    assert "reaches outside the 200x100 image" in response.json()["error"]["fields"]["problems"][0]
    # a file with no box at 0 is read as the devkit defines VOC, and says so
    one = zip_bytes({"Annotations/b.xml": voc_xml("street_b.png", (160, 120), [(3, 4, 40, 119)])})
    response = post_import(admin_api, people.project, one, "voc.zip", format="voc", annotator="bea")
    assert response.json()["voc_origin"] == 1
    assert current_boxes("bea") == {"street_b.png": [(2.0, 3.0, 40.0, 119.0)]}


CVAT_XML = b"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><name>streets</name><labels><label><name>pedestrian</name><type>rectangle</type></label></labels></task></meta>
  <image id="0" name="street_a.png" width="200" height="100">
    <box label="pedestrian" source="manual" occluded="1" xtl="10.50" ytl="20.25" xbr="60.12" ybr="90.00" z_order="0">
      <attribute name="truncated">true</attribute>
    </box>
    <box label="pedestrian" source="manual" occluded="0" outside="1" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"></box>
    <polygon label="pedestrian" source="manual" occluded="0" points="1,1;5,1;5,5" z_order="0"></polygon>
  </image>
  <image id="1" name="task_3/images/street_b.png" width="160" height="120">
    <box label="pedestrian" source="manual" occluded="0" xtl="0" ytl="0" xbr="40.5" ybr="119" z_order="0">
      <attribute name="ignore">true</attribute>
    </box>
  </image>
  <track id="0" label="pedestrian" source="manual">
    <box frame="0" keyframe="1" outside="0" occluded="0" xtl="120" ytl="5.5" xbr="199.75" ybr="99.5" z_order="0"></box>
    <box frame="1" keyframe="1" outside="1" occluded="0" xtl="120" ytl="5.5" xbr="159" ybr="99.5" z_order="0"></box>
  </track>
</annotations>
"""


def test_cvat_xml_reads_occluded_outside_attributes_and_tracks(admin_api, people, scene):
    response = post_import(admin_api, people.project, CVAT_XML, "annotations.xml", format="cvat", annotator="anna")
    assert response.status_code == 201, response.content
    summary = response.json()
    assert summary["left_out"] == {"polygon": 1} and summary["boxes"] == 3
    assert summary["matched"] == {"exact": 1, "file_name": 1}
    rows = Box.objects.filter(annotation__annotator__username="anna").order_by("annotation__image_id", "pk")
    got = list(
        rows.values_list(
            "annotation__image__original_name", "x1", "y1", "x2", "y2", "is_occluded", "is_truncated", "is_ignored"
        )
    )
    assert got == [
        ("street_a.png", 10.5, 20.25, 60.12, 90.0, True, True, False),
        ("street_a.png", 120.0, 5.5, 199.75, 99.5, False, False, False),
        ("street_b.png", 0.0, 0.0, 40.5, 119.0, False, False, True),
    ]
    # Quorum's CVAT export reads back the same
    exported = get_export(admin_api, people.project, format="cvat", source="annotator", annotator="anna")
    assert b"<version>1.1</version>" in exported
    response = post_import(admin_api, people.project, exported, "cvat.xml", format="cvat", annotator="bea")
    assert response.status_code == 201, response.content
    assert response.json()["matched"] == {"exact": 2}
    assert (
        list(
            Box.objects.filter(annotation__annotator__username="bea")
            .order_by("annotation__image_id", "pk")
            .values_list(
                "annotation__image__original_name", "x1", "y1", "x2", "y2", "is_occluded", "is_truncated", "is_ignored"
            )
        )
        == got
    )


def test_label_studio_export_goes_back_in_with_every_author(admin_api, people, scene):
    found, bea = scene
    post_import(
        admin_api,
        people.project,
        json.dumps(ls_export()).encode(),
        "ls.json",
        format="labelstudio",
        annotator_map=json.dumps({"2": "bea"}),
    )
    exported = json.loads(get_export(admin_api, people.project, format="labelstudio", source="panel"))
    street_a = next(task for task in exported if task["meta"]["quorum_image_id"] == found["street_a.png"].pk)
    assert street_a["data"]["image"] == "/data/local-files/?d=images/street_a.png"
    authors = [annotation["completed_by"] for annotation in street_a["annotations"]]
    assert authors == [{"id": people.annotator.pk, "email": "anna@example.com"}, bea.pk]
    # emptied and imported again: every box back, by the same authors
    before = {"anna": current_boxes("anna"), "bea": current_boxes("bea")}
    Box.objects.all().delete()
    Assignment.objects.all().delete()
    Annotation.objects.all().delete()
    Image.objects.update(submitted_count=0)
    response = post_import(
        admin_api,
        people.project,
        json.dumps(exported).encode(),
        "back.json",
        format="labelstudio",
        annotator_map=json.dumps({str(bea.pk): "bea"}),
    )
    assert response.status_code == 201, response.content
    assert response.json()["matched"] == {"file_name": 3}  # images/<name>: folders left aside
    assert {"anna": current_boxes("anna"), "bea": current_boxes("bea")} == before


# --- through Label Studio's own converter (label-studio-converter, from PyPI) ---------------------


def anna_imports_the_scene(admin_api, people):
    """The scene as anna's and bea's submissions, and cleo, an annotator with nothing yet, to import into."""
    MembershipFactory(project=people.project, user__username="cleo")
    response = post_import(
        admin_api,
        people.project,
        json.dumps(ls_export()).encode(),
        "ls.json",
        format="labelstudio",
        annotator_map=json.dumps({"2": "bea"}),
    )
    assert response.status_code == 201, response.content


def unzip(content: bytes, folder):
    zipfile.ZipFile(io.BytesIO(content)).extractall(folder)
    return folder


def folder_zip(folder) -> bytes:
    return zip_bytes(
        {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}
    )


@pytest.mark.parametrize("target_format", ["COCO", "YOLO", "VOC"])
def test_quorum_label_studio_json_through_the_converter_and_back(admin_api, people, scene, tmp_path, target_format):
    from label_studio_converter import Converter

    from boxes.labelstudio import labelstudio_config

    anna_imports_the_scene(admin_api, people)
    exported = get_export(admin_api, people.project, format="labelstudio", source="annotator", annotator="anna")
    (tmp_path / "ls.json").write_bytes(exported)
    converter = Converter(labelstudio_config(people.project.labels), project_dir=None, download_resources=False)
    out = tmp_path / "out"
    converter.convert(str(tmp_path / "ls.json"), str(out), target_format, is_dir=False)
    fields = {"format": target_format.lower(), "annotator": "cleo"}
    if target_format == "COCO":
        content, name = (out / "result.json").read_bytes(), "result.json"
    else:
        content, name = folder_zip(out), "export.zip"
    if target_format == "VOC":
        fields["voc_origin"] = "0"  # the converter counts pixels from 0 (and truncates to integers)
    response = post_import(admin_api, people.project, content, name, **fields)
    assert response.status_code == 201, response.content
    difference = largest_difference(current_boxes("cleo"), current_boxes("anna"))
    # COCO and YOLO carry floats; VOC integers: x1 truncated (< 1 px), x2 as int(x1) + int(width) (< 2 px)
    assert difference < (2 if target_format == "VOC" else 1e-6), difference
    print(f"Quorum labelstudio -> converter {target_format} -> Quorum: largest difference {difference:.3g} px")


@pytest.mark.parametrize("source_format", ["coco", "yolo"])
def test_quorum_exports_through_the_converter_into_label_studio_json_and_back(
    admin_api, people, scene, tmp_path, source_format
):
    from label_studio_converter.imports.coco import convert_coco_to_ls
    from label_studio_converter.imports.yolo import convert_yolo_to_ls

    anna_imports_the_scene(admin_api, people)
    out = tmp_path / "tasks.json"
    if source_format == "coco":
        (tmp_path / "coco.json").write_bytes(
            get_export(admin_api, people.project, format="coco", source="annotator", annotator="anna")
        )
        convert_coco_to_ls(str(tmp_path / "coco.json"), str(out), image_root_url="/data/local-files/?d=images/")
    else:
        exported = get_export(
            admin_api, people.project, format="yolo", source="annotator", annotator="anna", layout="flat"
        )
        convert_yolo_to_ls(str(unzip(exported, tmp_path / "yolo")), str(out), image_ext=".png,.jpg")
    response = post_import(
        admin_api, people.project, out.read_bytes(), "tasks.json", format="labelstudio", annotator="cleo"
    )
    assert response.status_code == 201, response.content
    difference = largest_difference(current_boxes("cleo"), current_boxes("anna"))
    assert difference < 1e-6, difference
    print(f"Quorum {source_format} -> converter -> Label Studio JSON -> Quorum: largest difference {difference:.3g} px")


def test_label_studio_export_of_gold_and_of_suggestions(admin_api, people, scene):
    from boxes.labelstudio import labelstudio_read

    found, _ = scene
    tasks = ls_export()
    tasks[0]["annotations"][0]["ground_truth"] = True
    response = post_import(
        admin_api,
        people.project,
        json.dumps(tasks).encode(),
        "ls.json",
        format="labelstudio",
        target="gold",
        predictions="suggestions",
    )
    assert response.status_code == 201, response.content
    gold = json.loads(get_export(admin_api, people.project, format="labelstudio", source="gold"))
    assert {task["meta"]["quorum_image_id"] for task in gold} == {
        found[n].pk for n in ("street_a.png", "street_b.png", PORTRAIT[0])
    }
    assert all(len(task["annotations"]) == 1 and task["annotations"][0]["ground_truth"] for task in gold)
    back = labelstudio_read(json.dumps(gold))
    street_a = next(image for image in back.images if image.file_name == "images/street_a.png")
    assert [(b.x1, b.y1, b.x2, b.y2) for b in street_a.boxes] == DRAWN[("street_a.png", 1)]
    predicted = json.loads(get_export(admin_api, people.project, format="labelstudio", source="suggestions"))
    assert len(predicted) == 1 and predicted[0]["annotations"] == []
    prediction = predicted[0]["predictions"][0]
    assert prediction["score"] == 0.71 and prediction["result"][0]["score"] == 0.71
    assert prediction["model_version"] == "imported labelstudio prediction yolo-v3"
    response = admin_api.get(
        reverse("api-project-export", kwargs={"project_id": people.project.pk}), {"format": "coco", "source": "panel"}
    )
    assert response.status_code == 400 and "format=labelstudio only" in response.json()["error"]["fields"]["source"][0]


def test_yolo_export_carries_classes_txt_and_a_flat_layout(admin_api, people, scene):
    anna_imports_the_scene(admin_api, people)
    names = zipfile.ZipFile(
        io.BytesIO(get_export(admin_api, people.project, format="yolo", source="annotator", annotator="anna"))
    ).namelist()
    assert "classes.txt" in names and "data.yaml" in names and any(n.startswith("labels/train/") for n in names)
    flat = zipfile.ZipFile(
        io.BytesIO(
            get_export(admin_api, people.project, format="yolo", source="annotator", annotator="anna", layout="flat")
        )
    )
    assert flat.read("classes.txt") == b"pedestrian\n"
    assert {"labels/street_a.txt", "images/street_a.png", "labels/street_b.txt", "images/street_b.png"} <= set(
        flat.namelist()
    )
    assert not any(name.count("/") > 1 for name in flat.namelist())
