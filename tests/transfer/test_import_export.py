"""Imports and exports: exact round trips through the API, ultralytics accepts the YOLO
export, and a bad import is refused whole with every problem listed."""

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from datasets.ingest import IncomingImage, image_ingest
from datasets.models import Image
from groundtruth.models import Annotation, AnnotationKind, Box
from tests import images
from tests.factories import ImageFactory, MembershipFactory

pytestmark = pytest.mark.django_db

SIZES = [(64, 48), (80, 60), (50, 90), (120, 40)]


@pytest.fixture
def project_images(people):
    uploads = []
    for index, size in enumerate(SIZES):
        data = images.image_bytes("JPEG", size=size, seed=100 + index)
        name = f"day/street_{index}.jpg" if index % 2 else f"street_{index}.jpg"
        uploads.append(IncomingImage(name=name, file=io.BytesIO(data), size=len(data)))
    image_ingest(project=people.project, uploads=uploads, user=None)
    return list(Image.objects.filter(project=people.project).order_by("pk"))


@pytest.fixture
def bea(people):
    """A second annotator of project A, to import one annotator's export as another's."""
    return MembershipFactory(project=people.project, user__username="bea").user


def coco_document(project_images, *, labels=("pedestrian",)) -> dict:
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": labels[0]}]}
    for index, image in enumerate(project_images, start=1):
        coco["images"].append(
            {"id": index, "file_name": image.original_name, "width": image.width, "height": image.height}
        )
        coco["annotations"].append(
            {"id": 2 * index, "image_id": index, "category_id": 1, "bbox": [1.5, 2.25, 10.125, 20.0], "iscrowd": 0}
        )
        coco["annotations"].append(
            {
                "id": 2 * index + 1, "image_id": index, "category_id": 1, "bbox": [20, 5, 8.5, 16.333], "iscrowd": index % 2,
                "attributes": {"occluded": True, "truncated": index == 2},
            }
        )  # fmt: skip
    return coco


def post_import(client, project, content: bytes, name: str, **fields):
    url = reverse("api-project-import", kwargs={"project_id": project.pk})
    return client.post(url, {"file": SimpleUploadedFile(name, content), **fields}, format="multipart")


def get_export(client, project, **params) -> bytes:
    response = client.get(reverse("api-project-export", kwargs={"project_id": project.pk}), params)
    assert response.status_code == 200, b"".join(response.streaming_content) if response.streaming else response.content
    assert response.streaming
    return b"".join(response.streaming_content)


def boxes_of(username: str, kind=AnnotationKind.SUBMISSION):
    rows = Box.objects.filter(
        annotation__annotator__username=username, annotation__kind=kind, annotation__is_current=True
    )
    return sorted(
        rows.values_list(
            "annotation__image_id", "x1", "y1", "x2", "y2", "label", "is_occluded", "is_truncated", "is_ignored"
        )
    )


@pytest.fixture
def admin_api(api_client, people):
    api_client.force_login(people.project_admin)
    return api_client


def test_coco_import_then_export_round_trips_exactly(admin_api, people, project_images, bea):
    response = post_import(
        admin_api,
        people.project,
        json.dumps(coco_document(project_images)).encode(),
        "gt.json",
        format="coco",
        target="annotator",
        annotator="anna",
    )
    assert response.status_code == 201, response.content
    summary = response.json()
    assert {key: summary[key] for key in ("format", "target", "annotator", "images", "boxes", "revised")} == {
        "format": "coco",
        "target": "annotator",
        "annotator": "anna",
        "images": 4,
        "boxes": 8,
        "revised": 0,
    }
    assert summary["matched"] == {"exact": 4}
    assert summary["per_annotator"] == {"anna": {"submissions": 4, "boxes": 8}}
    first = get_export(admin_api, people.project, format="coco", source="annotator", annotator="anna")
    # importing the export as another annotator and exporting that gives the same boxes
    response = post_import(
        admin_api, people.project, first, "again.json", format="coco", target="annotator", annotator="bea"
    )
    assert response.status_code == 201, response.content
    second = get_export(admin_api, people.project, format="coco", source="annotator", annotator="bea")
    strip = lambda text: {k: v for k, v in json.loads(text).items() if k != "info"}  # noqa: E731
    assert strip(first) == strip(second)
    assert boxes_of("anna") == boxes_of("bea")
    exported = json.loads(first)
    assert [image["file_name"] for image in exported["images"]] == [
        "street_0.jpg",
        "day__street_1.jpg",
        "street_2.jpg",
        "day__street_3.jpg",
    ]
    assert exported["annotations"][0]["bbox"] == [1.5, 2.25, 10.125, 20.0]
    assert sum(a["iscrowd"] for a in exported["annotations"]) == 2


def test_yolo_export_imports_back_exactly_and_ultralytics_accepts_it(admin_api, people, project_images, tmp_path):
    document = coco_document(project_images)
    for annotation in document["annotations"]:
        annotation["iscrowd"] = 0  # YOLO carries boxes and labels only
        annotation.pop("attributes", None)
    post_import(admin_api, people.project, json.dumps(document).encode(), "gt.json", format="coco", target="gold")
    exported = get_export(admin_api, people.project, format="yolo", source="gold")
    # round trip: the zip imports back onto the same images with the same boxes
    response = post_import(
        admin_api, people.project, exported, "yolo.zip", format="yolo", target="annotator", annotator="anna"
    )
    assert response.status_code == 201, response.content
    gold = [row[:6] for row in boxes_of("adam", AnnotationKind.GOLD)]
    assert [row[:6] for row in boxes_of("anna")] == gold
    assert get_export(admin_api, people.project, format="yolo", source="annotator", annotator="anna") == exported
    # ultralytics' own dataset check and label reader accept it
    folder = tmp_path / "yolo"
    zipfile.ZipFile(io.BytesIO(exported)).extractall(folder)
    from ultralytics.data.utils import check_det_dataset, verify_image_label

    data = check_det_dataset(str(folder / "data.yaml"))
    assert data["names"] == {0: "pedestrian"} and data["nc"] == 1
    counted = 0
    for image_path in (folder / "images").rglob("*.jpg"):
        label_path = folder / "labels" / image_path.parent.name / f"{image_path.stem}.txt"
        result = verify_image_label((str(image_path), str(label_path), "", False, 1, 0, 3, False))
        labels = result[1]
        assert result[-1] == "" or "WARNING" not in result[-1]
        counted += len(labels)
    assert counted == 8


def test_voc_export_imports_back_exactly(admin_api, people, project_images, bea):
    post_import(
        admin_api,
        people.project,
        json.dumps(coco_document(project_images)).encode(),
        "gt.json",
        format="coco",
        target="annotator",
        annotator="anna",
    )
    exported = get_export(admin_api, people.project, format="voc", source="annotator", annotator="anna")
    names = zipfile.ZipFile(io.BytesIO(exported)).namelist()
    assert "Annotations/day__street_1.xml" in names and "JPEGImages/day__street_1.jpg" in names
    assert {"ImageSets/Main/train.txt", "ImageSets/Main/val.txt", "ImageSets/Main/test.txt"} <= set(names)
    response = post_import(
        admin_api, people.project, exported, "voc.zip", format="voc", target="annotator", annotator="bea"
    )
    assert response.status_code == 201, response.content
    assert boxes_of("bea") == boxes_of("anna")


def test_a_second_import_is_a_new_revision_that_keeps_the_old(admin_api, people, project_images):
    content = json.dumps(coco_document(project_images)).encode()
    post_import(admin_api, people.project, content, "a.json", format="coco", target="annotator", annotator="anna")
    response = post_import(
        admin_api, people.project, content, "b.json", format="coco", target="annotator", annotator="anna"
    )
    assert response.json()["revised"] == 4
    annotations = Annotation.objects.filter(annotator=people.annotator, image=project_images[0])
    assert [(a.revision, a.is_current) for a in annotations.order_by("revision")] == [(1, False), (2, True)]
    assert annotations.get(revision=2).supersedes == annotations.get(revision=1)


def test_gold_import_marks_images_gold(admin_api, people, project_images):
    post_import(
        admin_api,
        people.project,
        json.dumps(coco_document(project_images)).encode(),
        "gt.json",
        format="coco",
        target="gold",
    )
    assert Image.objects.filter(project=people.project, is_gold=True).count() == 4
    assert Annotation.objects.filter(kind="gold", annotator=people.project_admin).count() == 4


def label_studio_tasks(project_images, label="pedestrian"):
    image = project_images[0]
    return [
        {
            "id": 1,
            "data": {"image": f"/data/upload/1/{image.original_name}"},
            "annotations": [
                {
                    "result": [
                        {
                            "type": "rectanglelabels", "original_width": image.width, "original_height": image.height,
                            "value": {"x": 10, "y": 10, "width": 20, "height": 50, "rotation": 0, "rectanglelabels": [label]},
                        }
                    ]
                }
            ],
        }
    ]  # fmt: skip


def test_label_studio_import(admin_api, people, project_images):
    content = json.dumps(label_studio_tasks(project_images)).encode()
    response = post_import(
        admin_api, people.project, content, "ls.json", format="labelstudio", target="annotator", annotator="anna"
    )
    assert response.status_code == 201, response.content
    assert boxes_of("anna") == [(project_images[0].pk, 6.4, 4.8, 19.2, 28.8, "pedestrian", False, False, False)]


def one_image(images_, entry):
    document = coco_document(images_)
    return {**document, "images": [entry], "annotations": [a for a in document["annotations"] if a["image_id"] == 1]}


BAD_IMPORTS = [
    ("unknown image", lambda imgs: one_image(imgs, {"id": 1, "file_name": "nope.jpg", "width": 64, "height": 48}), "nope.jpg: no image of this project has that name"),
    ("unknown label", lambda imgs: coco_document(imgs, labels=("car",)), "unknown label(s) car; this project has pedestrian"),
    ("size mismatch", lambda imgs: one_image(imgs, {"id": 1, "file_name": "street_0.jpg", "width": 640, "height": 480}), "street_0.jpg: the file says 640x480, the image is 64x48"),
    ("outside", lambda imgs: {**coco_document(imgs), "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [60, 0, 10, 10]}]}, "reaches outside the 64x48 image"),
    ("negative", lambda imgs: {**coco_document(imgs), "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, -4, 10]}]}, "the box has no area"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "make", "problem"), BAD_IMPORTS, ids=[b[0] for b in BAD_IMPORTS])
def test_bad_imports_are_refused_whole_with_the_problems_listed(admin_api, people, project_images, case, make, problem):
    response = post_import(
        admin_api,
        people.project,
        json.dumps(make(project_images)).encode(),
        "x.json",
        format="coco",
        target="annotator",
        annotator="anna",
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["message"].endswith("nothing was imported.")
    assert any(problem in item for item in error["fields"]["problems"]), error
    assert Annotation.objects.count() == 0 and Box.objects.count() == 0


def test_nan_in_json_and_malformed_json_are_refused(admin_api, people, project_images):
    text = json.dumps(coco_document(project_images)).replace("10.125", "NaN")
    response = post_import(admin_api, people.project, text.encode(), "nan.json", format="coco", target="gold")
    assert response.status_code == 400
    assert sum("coordinates must be finite" in p for p in response.json()["error"]["fields"]["problems"]) == 4
    response = post_import(admin_api, people.project, b"{oops", "bad.json", format="coco", target="gold")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("Not valid JSON")
    assert Annotation.objects.count() == 0


def test_clip_option_clips_instead(admin_api, people, project_images):
    document = {
        **coco_document(project_images),
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [60, 0, 10, 10]}],
    }
    response = post_import(
        admin_api,
        people.project,
        json.dumps(document).encode(),
        "x.json",
        format="coco",
        target="annotator",
        annotator="anna",
        clip="true",
    )
    assert response.status_code == 201
    assert boxes_of("anna") == [(project_images[0].pk, 60.0, 0.0, 64.0, 10.0, "pedestrian", False, False, False)]


def test_label_studio_unknown_labels_and_importing_for_a_non_member(admin_api, people, project_images):
    content = json.dumps(label_studio_tasks(project_images, label="dog")).encode()
    response = post_import(admin_api, people.project, content, "ls.json", format="labelstudio", target="gold")
    assert response.status_code == 400
    assert "unknown label(s) dog" in response.json()["error"]["fields"]["problems"][0]
    content = json.dumps(label_studio_tasks(project_images)).encode()
    response = post_import(
        admin_api, people.project, content, "ls.json", format="labelstudio", target="annotator", annotator="otto"
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("otto is not an annotator of this project")
    assert Annotation.objects.count() == 0


def test_zip_slip_in_an_import_archive_is_refused(admin_api, people, project_images):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("../../evil.xml", b"<annotation/>")
    response = post_import(admin_api, people.project, buffer.getvalue(), "voc.zip", format="voc", target="gold")
    assert response.status_code == 400
    assert "'..' are not allowed" in response.json()["error"]["fields"]["problems"][0]


def test_export_and_import_permissions(api_client, people, project_images):
    export_url = reverse("api-project-export", kwargs={"project_id": people.project.pk})
    for role, expected in {"annotator": 403, "reviewer": 200, "outsider": 404}.items():
        api_client.force_login(getattr(people, role))
        assert api_client.get(export_url, {"format": "coco"}).status_code == expected, role
    api_client.force_login(people.reviewer)
    response = post_import(api_client, people.project, b"{}", "x.json", format="coco", target="gold")
    assert response.status_code == 403
    assert api_client.get(export_url, {"format": "pdf"}).status_code == 400


def test_export_names_agree_page_by_page_and_for_the_whole_project(people):
    from transfer.exports import _page_names, _unflattened, export_file_names

    names = ["day/a.jpg", "day__a.jpg", "night\\a.jpg", "b.jpg", "b.jpg", "c.png"]
    rows = []
    for name in names:
        rows.append(ImageFactory(project=people.project, original_name=name))
    whole = export_file_names(people.project)
    for row in rows:
        assert _page_names(people.project, [(row.pk, row.original_name)]) == {row.pk: whole[row.pk]}
    assert len(set(whole.values())) == len(names)
    assert whole[rows[0].pk] == f"day__a-{rows[0].pk}.jpg"
    assert whole[rows[2].pk] == "night__a.jpg"
    assert whole[rows[5].pk] == "c.png"
    assert _unflattened("x__y.jpg") == {"x__y.jpg", "x/y.jpg", "x\\y.jpg"}


def test_zip_exports_are_the_same_bytes_whenever_they_run(monkeypatch):
    import time as clock

    from transfer.exports import zip_stream

    files = [("data.yaml", b"names: [pedestrian]\n"), ("images/train/", b""), ("images/train/a.jpg", b"\xff\xd8")]
    first = b"".join(zip_stream(iter(files)))
    monkeypatch.setattr(clock, "time", lambda: 2_000_000_000.0)  # another day, another second
    monkeypatch.setattr(clock, "localtime", lambda *args: clock.gmtime(2_000_000_000))
    assert b"".join(zip_stream(iter(files))) == first
    assert zipfile.ZipFile(io.BytesIO(first)).getinfo("images/train/").is_dir()


def test_imported_submissions_count_toward_k_and_the_kth_sends_the_update(
    admin_api, people, project_images, django_capture_on_commit_callbacks
):
    from groundtruth.computing import consensus_version_compute
    from groundtruth.records import image_consensus_enqueue
    from groundtruth.services import consensus_version_create

    people.project.overlap_k = 2
    people.project.save()
    consensus_version_compute(version_id=consensus_version_create(project=people.project, user=None).pk)
    content = json.dumps(coco_document(project_images)).encode()
    MembershipFactory(project=people.project, user__username="bert")
    with django_capture_on_commit_callbacks() as callbacks:
        for annotator in ("anna", "anna", "bert"):  # anna's second import is a revision: not counted again
            response = post_import(admin_api, people.project, content, "x.json", format="coco", target="annotator",
                                   annotator=annotator)  # fmt: skip
            assert response.status_code == 201
    assert set(Image.objects.filter(project=people.project).values_list("submitted_count", flat=True)) == {2}
    # bert's import made every image complete: one update per image, after commit (anna's two
    # imports left each image below k, so they sent none)
    updates = [callback for callback in callbacks if getattr(callback, "func", None) is image_consensus_enqueue]
    assert len(updates) == len(project_images)
