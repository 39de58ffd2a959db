"""The review page in a real browser: a reviewer accepts a below-quorum box, rejects an
agreed one, draws one everyone missed, saves; the stored ground truth is exactly that."""

import io

import pytest

from datasets.ingest import IncomingImage, image_ingest
from datasets.models import Image
from groundtruth.computing import consensus_version_compute
from groundtruth.models import Adjudication, Annotation, Box, ImageConsensus, ImageState
from groundtruth.services import consensus_version_create
from tests import images
from tests.conftest import errors_collected, screenshot, sign_in
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PERSON, OTHER = (100.0, 100.0, 140.0, 200.0), (400.0, 100.0, 440.0, 200.0)


@pytest.fixture
def disputed(people):
    """One stored 640 x 480 image: two of three annotators box PERSON, the third OTHER."""
    data = images.image_bytes("PNG", size=(640, 480), seed=41)
    image_ingest(
        project=people.project, uploads=[IncomingImage(name="a.png", file=io.BytesIO(data), size=len(data))], user=None
    )
    image = Image.objects.get(project=people.project)
    annotators = [people.annotator] + [
        MembershipFactory(project=people.project, user__username=f"ann{i}").user for i in range(2)
    ]
    for annotator, box in zip(annotators, (OTHER, PERSON, PERSON), strict=True):
        annotation = Annotation.objects.create(image=image, annotator=annotator)
        Box.objects.create(annotation=annotation, x1=box[0], y1=box[1], x2=box[2], y2=box[3])
    Image.objects.filter(pk=image.pk).update(submitted_count=3)
    version = consensus_version_create(project=people.project, user=people.reviewer)
    consensus_version_compute(version_id=version.pk)
    return image, version


def test_a_reviewer_settles_an_image_with_the_keyboard_and_the_mouse(browser, live_server, people, disputed):
    image, version = disputed
    assert ImageConsensus.objects.get(version=version, image=image).state == ImageState.NEEDS_REVIEW
    page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    errors = errors_collected(page)
    sign_in(page, live_server.url, "rita")
    # an image that cannot be reviewed here is refused, and the queue takes over
    page.goto(f"{live_server.url}/projects/{people.project.pk}/review/?image=999999")
    page.wait_for_selector("#reviewer[data-ready='1']")
    assert page.get_attribute("#reviewer", "data-image") == str(image.pk)
    assert [e for e in errors if "404" not in e] == []  # the browser logs the refused image's 404
    errors.clear()
    page.goto(f"{live_server.url}/projects/{people.project.pk}/review/?image={image.pk}")
    page.wait_for_selector("#reviewer[data-ready='1']")
    assert page.locator("#legend .swatch").all_inner_texts() == ["A (1)", "B (1)", "C (1)"]  # anonymous
    assert page.inner_text("#counts") == "1 accepted, 1 pending"
    screenshot(page, "review")

    def screen(x, y):
        point = page.evaluate("([x, y]) => window.quorumReview.imageToScreen(x, y)", [x, y])
        return point["x"], point["y"]

    page.keyboard.press("Enter")  # refused: a box is still pending
    assert "still pending" in page.inner_text("#status")
    page.keyboard.press("n")  # selects the pending one, OTHER
    page.keyboard.press("a")  # accept it
    page.mouse.click(*screen(120, 150))  # select PERSON
    page.keyboard.press("r")  # reject it
    page.mouse.move(*screen(250, 250))
    page.mouse.down()
    page.mouse.move(*screen(300, 350), steps=8)
    page.mouse.up()  # draw one everyone missed
    assert page.inner_text("#counts") == "2 accepted, 0 pending"
    page.keyboard.press("Enter")
    page.wait_for_selector("#reviewer[data-ready='done']")

    adjudication = Adjudication.objects.get(image=image, is_active=True)
    assert adjudication.reviewer == people.reviewer
    stored = sorted(adjudication.boxes)
    assert stored[0][:4] == pytest.approx([250, 250, 300, 350], abs=1.0) and stored[0][4] is False
    assert stored[1] == [*OTHER, False]
    row = ImageConsensus.objects.get(version=version, image=image)
    assert row.state == ImageState.ADJUDICATED
    assert sorted((b.x1, b.source) for b in row.boxes.all()) == [
        (pytest.approx(250, abs=1.0), "reviewer"),
        (400, "reviewer"),
    ]
    # back on the settled image: its reviewer boxes are the working set; g saves them as gold
    page.goto(f"{live_server.url}/projects/{people.project.pk}/review/?image={image.pk}")
    page.wait_for_selector("#reviewer[data-ready='1']")
    assert page.is_visible("#redo-button")
    assert page.inner_text("#counts") == "2 accepted, 0 pending"
    page.keyboard.press("g")
    page.wait_for_selector("#reviewer[data-ready='done']")
    image.refresh_from_db()
    assert image.is_gold
    gold = Annotation.objects.get(image=image, kind="gold", is_current=True)
    assert sorted((b.x1, b.x2) for b in gold.boxes.all())[1] == (400, 440)
    # and redo hands the image back to the consensus
    page.goto(f"{live_server.url}/projects/{people.project.pk}/review/?image={image.pk}")
    page.wait_for_selector("#reviewer[data-ready='1']")
    page.click("#redo-button")
    page.wait_for_selector("#redo-button", state="hidden")  # reloaded, no adjudication left
    page.wait_for_selector("#reviewer[data-ready='1']")
    assert not Adjudication.objects.filter(image=image, is_active=True).exists()
    assert ImageConsensus.objects.get(version=version, image=image).state == ImageState.NEEDS_REVIEW
    assert page.inner_text("#counts") == "1 accepted, 1 pending"
    assert errors == []


def test_a_click_that_selects_a_box_keeps_undo_and_redo(browser, live_server, people, disputed):
    """The review page edits boxes with the canvas's own code (static/quorum/lib/): clicking a
    box to select it, without moving it, changes nothing, so a redo still redoes."""
    image, _ = disputed
    page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server.url, "rita")
    page.goto(f"{live_server.url}/projects/{people.project.pk}/review/?image={image.pk}")
    page.wait_for_selector("#reviewer[data-ready='1']")

    def screen(x, y):
        point = page.evaluate("([x, y]) => window.quorumReview.imageToScreen(x, y)", [x, y])
        return point["x"], point["y"]

    page.mouse.move(*screen(250, 250))
    page.mouse.down()
    page.mouse.move(*screen(300, 350), steps=8)
    page.mouse.up()  # a third box
    assert len(page.evaluate("window.quorumReview.boxes()")) == 3
    page.keyboard.press("Control+z")
    assert len(page.evaluate("window.quorumReview.boxes()")) == 2
    page.mouse.click(*screen(120, 150))  # select PERSON, moving nothing
    before = page.evaluate("window.quorumReview.boxes()")
    page.keyboard.press("Control+Shift+z")
    after = page.evaluate("window.quorumReview.boxes()")
    assert len(after) == 3 and after[:2] == before
    assert errors == []
