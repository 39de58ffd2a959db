"""The annotation canvas in a real browser: draw, resize by a handle, flag by keyboard,
undo and redo, submit; again zoomed in after a pan; and two tabs on one draft."""

import io

import pytest

from annotation.models import Assignment
from datasets.ingest import IncomingImage, image_ingest
from groundtruth.models import Annotation
from tests import images
from tests.conftest import errors_collected, screenshot
from tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 400, 300


@pytest.fixture
def project(people):
    data = [images.image_bytes("PNG", size=(WIDTH, HEIGHT), seed=300 + i) for i in range(3)]
    uploads = [IncomingImage(name=f"{i}.png", file=io.BytesIO(d), size=len(d)) for i, d in enumerate(data)]
    image_ingest(project=people.project, uploads=uploads, user=None)
    return people.project


def open_canvas(browser, live_server, project, *, context=None):
    context = context or browser.new_context(viewport={"width": 1200, "height": 800})
    page = context.new_page()
    errors = errors_collected(page)
    page.goto(f"{live_server.url}/login/")
    if page.locator("#id_username").count():
        page.fill("#id_username", "anna")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#annotate")
    page.goto(f"{live_server.url}/projects/{project.pk}/annotate/")
    page.wait_for_selector("#annotator[data-ready='1']")
    return page, errors


def screen(page, x, y):
    point = page.evaluate("([x, y]) => window.quorumCanvas.imageToScreen(x, y)", [x, y])
    return point["x"], point["y"]


def drag(page, start, end, steps=8):
    page.mouse.move(*screen(page, *start))
    page.mouse.down()
    page.mouse.move(*screen(page, *end), steps=steps)
    page.mouse.up()


def submitted_boxes(assignment_id):
    annotation = Annotation.objects.get(assignment__pk=assignment_id)
    return [(b.x1, b.y1, b.x2, b.y2, b.is_occluded) for b in annotation.boxes.order_by("pk")]


def assert_close(actual, expected, tolerance=1.0):
    assert len(actual) == len(expected), (actual, expected)
    for got, want in zip(actual, expected, strict=True):
        assert all(abs(a - b) <= tolerance for a, b in zip(got[:4], want[:4], strict=True)), (got, want)
        assert got[4:] == want[4:], (got, want)


def test_draw_resize_flag_undo_redo_submit(browser, live_server, project, tmp_path):
    page, errors = open_canvas(browser, live_server, project)
    assignment_id = int(page.get_attribute("#annotator", "data-assignment"))
    # two boxes by mouse
    drag(page, (50, 60), (150, 260))
    drag(page, (200, 50), (260, 200))
    assert page.inner_text("#box-count") == "2 boxes"
    # resize the second (selected) box by its bottom-right handle
    drag(page, (260, 200), (280, 230))
    # flag it occluded by keyboard, undo, redo
    page.keyboard.press("o")
    assert page.evaluate("window.quorumCanvas.boxes()[1].is_occluded") is True
    page.keyboard.press("Control+z")
    assert page.evaluate("window.quorumCanvas.boxes()[1].is_occluded") is False
    page.keyboard.press("Control+Shift+z")
    assert page.evaluate("window.quorumCanvas.boxes()[1].is_occluded") is True
    # a third box, deleted with Backspace as with Delete
    drag(page, (300, 240), (340, 290))
    assert page.inner_text("#box-count") == "3 boxes"
    page.keyboard.press("Backspace")
    assert page.inner_text("#box-count") == "2 boxes"
    screenshot(page, "canvas")
    # submit; the next image loads without a page reload
    page.keyboard.press("Control+Enter")
    page.wait_for_function(f"() => document.getElementById('annotator').dataset.assignment !== '{assignment_id}'")
    assert "submitted 2 box(es)" in page.inner_text("#status") or page.get_attribute("#annotator", "data-ready") == "1"
    assert_close(submitted_boxes(assignment_id), [(50, 60, 150, 260, False), (200, 50, 280, 230, True)])
    assert errors == []


@pytest.mark.parametrize("pixel_ratio", [1, 2])
def test_zoomed_in_after_a_pan_coordinates_stay_in_image_pixels(browser, live_server, project, pixel_ratio):
    context = browser.new_context(viewport={"width": 1000, "height": 700}, device_scale_factor=pixel_ratio)
    page, errors = open_canvas(browser, live_server, project, context=context)
    assignment_id = int(page.get_attribute("#annotator", "data-assignment"))
    before = page.evaluate("window.quorumCanvas.view()")
    # zoom in 2x around a point (four wheel notches), then pan with space + drag
    page.mouse.move(*screen(page, 200, 150))
    for _ in range(4):
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(50)
    page.keyboard.down(" ")
    x, y = screen(page, 200, 150)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 120, y - 80, steps=6)
    page.mouse.up()
    page.keyboard.up(" ")
    view = page.evaluate("window.quorumCanvas.view()")
    assert view["scale"] == pytest.approx(before["scale"] * 2, rel=1e-9)
    # draw where image pixels (180, 120)-(230, 200) now are on screen
    drag(page, (180, 120), (230, 200))
    page.keyboard.press("Shift+F")  # F fits the image again, with caps lock or shift too
    assert page.evaluate("window.quorumCanvas.view()")["scale"] == pytest.approx(before["scale"], rel=1e-9)
    page.click("#submit-button")
    page.wait_for_function(f"() => document.getElementById('annotator').dataset.assignment !== '{assignment_id}'")
    assert_close(submitted_boxes(assignment_id), [(180, 120, 230, 200, False)])
    assert errors == []


def test_two_tabs_on_one_draft_the_stale_tab_is_told_and_loses_nothing(browser, live_server, project):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    first, _ = open_canvas(browser, live_server, project, context=context)
    second, _ = open_canvas(browser, live_server, project, context=context)
    assignment_id = int(first.get_attribute("#annotator", "data-assignment"))
    assert int(second.get_attribute("#annotator", "data-assignment")) == assignment_id
    # the first tab draws and autosaves
    drag(first, (20, 20), (80, 120))
    first.wait_for_function("() => document.getElementById('save-state').textContent === 'saved'")
    # the second tab, which never saw that save, draws and tries to save
    drag(second, (300, 100), (360, 250))
    second.wait_for_selector("#conflict:not([hidden])")
    assert "Another tab saved this task with 1 box(es)" in second.inner_text("#conflict")
    # nothing was overwritten silently
    assert Assignment.objects.get(pk=assignment_id).draft[0]["x1"] == pytest.approx(20, abs=1)
    # keeping its own boxes saves them on top of the newer version, knowingly
    second.click("#keep-mine")
    second.wait_for_function("() => document.getElementById('save-state').textContent === 'saved'")
    draft = Assignment.objects.get(pk=assignment_id).draft
    assert len(draft) == 1 and draft[0]["x1"] == pytest.approx(300, abs=1)
    context.close()


def test_300_boxes_on_a_4000x3000_image(browser, live_server, people):
    """The canvas loads a 12-megapixel image with a 300-box draft, keeps every box in image
    pixels, and reports how long a full redraw takes (printed, not asserted)."""
    from annotation.assignments import assignment_draft_save, assignment_lease_next

    data = images.image_bytes("JPEG", size=(4000, 3000), seed=400)
    image_ingest(
        project=people.project,
        uploads=[IncomingImage(name="big.jpg", file=io.BytesIO(data), size=len(data))],
        user=None,
    )
    assignment = assignment_lease_next(project=people.project, user=people.annotator)
    boxes = [
        {
            "x1": 10.0 + (i % 30) * 130,
            "y1": 10.0 + (i // 30) * 290,
            "x2": 110.0 + (i % 30) * 130,
            "y2": 280.0 + (i // 30) * 290,
            "label": "pedestrian",
        }
        for i in range(300)
    ]
    assignment_draft_save(assignment=assignment, boxes=boxes, expected_version=assignment.version)
    page, errors = open_canvas(browser, live_server, people.project)
    assert page.inner_text("#box-count") == "300 boxes"
    assert page.evaluate("window.quorumCanvas.boxes()") == boxes
    milliseconds = page.evaluate("window.quorumCanvas.redrawMs(30)")
    print(f"full redraw of a 4000x3000 image with 300 boxes: {milliseconds:.1f} ms")
    # a box drawn over the crowd of 300 still lands in image pixels
    drag(page, (3900, 2900), (3990, 2990))
    assert page.evaluate("window.quorumCanvas.boxes().length") == 301
    last = page.evaluate("window.quorumCanvas.boxes()[300]")
    assert abs(last["x1"] - 3900) <= 5 and abs(last["y2"] - 2990) <= 5  # 1 screen px is about 5 image px here
    assert errors == []


def test_active_time_stops_when_idle_or_hidden_and_is_stored(browser, live_server, project):
    page, errors = open_canvas(browser, live_server, project)
    assignment_id = int(page.get_attribute("#annotator", "data-assignment"))
    # working: the clock runs
    for step in range(5):
        page.mouse.move(*screen(page, 100 + step * 10, 100))
        page.wait_for_timeout(500)
    working = page.evaluate("window.quorumCanvas.activeSeconds()")
    assert working >= 1.5
    # idle (the limit lowered to 1 s for the test): the clock stops
    page.evaluate("document.getElementById('annotator').dataset.idleMs = '1000'")
    page.wait_for_timeout(3500)
    idle = page.evaluate("window.quorumCanvas.activeSeconds()")
    assert idle - working < 2.0
    # hidden tab: the clock stops even with input
    page.evaluate("Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true})")
    for step in range(4):
        page.mouse.move(*screen(page, 50 + step * 10, 60))
        page.wait_for_timeout(500)
    hidden = page.evaluate("window.quorumCanvas.activeSeconds()")
    assert hidden - idle < 1.1
    page.evaluate("Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true})")
    page.click("#submit-button")
    page.wait_for_function(f"() => document.getElementById('annotator').dataset.assignment !== '{assignment_id}'")
    stored = Annotation.objects.get(assignment__pk=assignment_id).active_seconds
    assert abs(stored - hidden) < 1.5
    assert errors == []


def test_suggestions_are_shown_only_where_allowed_and_taken_boxes_are_marked(browser, live_server, project):
    from annotation.models import Suggestion
    from datasets.models import Image

    for image in Image.objects.filter(project=project):
        Suggestion.objects.create(
            image=image, source="model 1",
            boxes=[{"x1": 50, "y1": 40, "x2": 110, "y2": 200, "label": "pedestrian", "score": 0.9}],
        )  # fmt: skip
    # off by default: the panel stays blind
    page, errors = open_canvas(browser, live_server, project)
    assert page.get_attribute("#annotator", "data-suggestions") == "0"
    page.close()

    project.allow_suggestions = True
    project.save(update_fields=["allow_suggestions"])
    page, errors = open_canvas(browser, live_server, project)
    assert page.get_attribute("#annotator", "data-suggestions") == "1"
    assert "u takes them" in page.inner_text("#status")
    page.keyboard.press("u")
    assert page.evaluate("window.quorumCanvas.boxes().length") == 1
    assert page.get_attribute("#annotator", "data-suggestions") == "0"
    page.keyboard.press("Control+z")  # undoing u gives the suggestions back, to take again
    assert page.evaluate("window.quorumCanvas.boxes().length") == 0
    assert page.get_attribute("#annotator", "data-suggestions") == "1"
    page.keyboard.press("u")
    drag(page, (200, 100), (260, 250))  # and one of the annotator's own
    assignment_id = int(page.get_attribute("#annotator", "data-assignment"))
    page.keyboard.press("Control+Enter")
    for _ in range(40):
        if Annotation.objects.filter(assignment__pk=assignment_id).exists():
            break
        page.wait_for_timeout(250)
    annotation = Annotation.objects.get(assignment__pk=assignment_id)
    marks = [(round(b.x1), b.is_from_suggestion) for b in annotation.boxes.order_by("pk")]
    assert marks == [(50, True), (200, False)]
    assert errors == []


def test_a_click_that_selects_a_box_keeps_the_redo_stack(browser, live_server, project):
    page, errors = open_canvas(browser, live_server, project)
    drag(page, (50, 60), (150, 260))
    drag(page, (200, 50), (280, 230))
    page.keyboard.press("Control+z")  # the second box is undone: redo could bring it back
    assert page.evaluate("window.quorumCanvas.boxes().length") == 1
    page.mouse.click(*screen(page, 100, 160))  # select the first box, moving nothing
    assert page.evaluate("window.quorumCanvas.boxes()[0]")["x1"] == pytest.approx(50, abs=1)
    page.keyboard.press("Control+Shift+z")
    assert page.evaluate("window.quorumCanvas.boxes().length") == 2
    # a click changes nothing to undo either: one undo takes back the redone box, the next the first
    page.mouse.click(*screen(page, 100, 160))
    page.keyboard.press("Control+z")
    assert page.evaluate("window.quorumCanvas.boxes().length") == 1
    # and a real move is one undo step that clears redo
    drag(page, (100, 160), (120, 170))
    assert page.evaluate("window.quorumCanvas.boxes()[0]")["x1"] == pytest.approx(70, abs=1)
    page.keyboard.press("Control+Shift+z")
    assert page.evaluate("window.quorumCanvas.boxes().length") == 1
    page.keyboard.press("Control+z")
    assert page.evaluate("window.quorumCanvas.boxes()[0]")["x1"] == pytest.approx(50, abs=1)
    assert errors == []


def test_brightness_contrast_and_gamma_change_the_display_and_nothing_stored(
    filesystem_media, browser, live_server, project
):
    page, errors = open_canvas(browser, live_server, project)
    drag(page, (50, 60), (150, 260))
    page.evaluate("window.quorumCanvas.saveNow()")
    boxes = page.evaluate("window.quorumCanvas.boxes()")
    point = (300, 40)  # outside the box: the image itself
    before = page.evaluate("([x, y]) => window.quorumCanvas.pixel(x, y)", list(point))
    page.mouse.click(*screen(page, 350, 200))  # the canvas has the keys; clicking off a box selects none
    for _ in range(4):
        page.keyboard.press("b")
    brighter = page.evaluate("([x, y]) => window.quorumCanvas.pixel(x, y)", list(point))
    assert page.evaluate("window.quorumCanvas.display().brightness") == pytest.approx(2.0, abs=0.01)
    assert sum(brighter) > sum(before)
    page.keyboard.press("0")
    assert page.evaluate("([x, y]) => window.quorumCanvas.pixel(x, y)", list(point)) == before
    for _ in range(4):
        page.keyboard.press("Shift+G")  # darker mid-tones
    darker = page.evaluate("([x, y]) => window.quorumCanvas.pixel(x, y)", list(point))
    assert sum(darker) < sum(before)
    # the slider does what the key does
    page.locator("#display input[name=contrast]").fill("1")  # one doubling
    assert page.evaluate("window.quorumCanvas.display().contrast") == 2
    page.click("#display-reset")
    assert page.evaluate("window.quorumCanvas.display()") == {"brightness": 1, "contrast": 1, "gamma": 1}
    # the boxes, and the draft the server holds, are as they were
    assert page.evaluate("window.quorumCanvas.boxes()") == boxes
    assignment = Assignment.objects.get(pk=page.get_attribute("#annotator", "data-assignment"))
    assert [(b["x1"], b["y1"], b["x2"], b["y2"]) for b in assignment.draft] == [
        (b["x1"], b["y1"], b["x2"], b["y2"]) for b in boxes
    ]
    assert errors == []


def test_the_next_4000x3000_image_is_loaded_ahead_and_shown_on_submit(browser, live_server, people):
    """While the annotator works, the canvas leases the next task and decodes its image; on
    submit it draws that image without fetching it. Prints the time from submit to the next
    image drawn (the target is 100 ms on a local server)."""
    data = [images.image_bytes("JPEG", size=(4000, 3000), seed=410 + i) for i in range(4)]
    uploads = [IncomingImage(name=f"big{i}.jpg", file=io.BytesIO(d), size=len(d)) for i, d in enumerate(data)]
    image_ingest(project=people.project, uploads=uploads, user=None)
    page, errors = open_canvas(browser, live_server, people.project)
    fetched = []
    page.on("request", lambda request: fetched.append(request.url) if "/image/" in request.url else None)
    timings = []
    for _ in range(2):  # the second switch starts from an image that was itself loaded ahead
        current = page.get_attribute("#annotator", "data-assignment")
        page.wait_for_selector(f"#annotator[data-ahead]:not([data-ahead='{current}'])")
        ahead = page.get_attribute("#annotator", "data-ahead")
        drag(page, (100, 100), (400, 900))
        fetched.clear()
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f"#annotator[data-assignment='{ahead}'][data-ready='1']")
        assert page.get_attribute("#annotator", "data-from-ahead") == "1"
        assert not [url for url in fetched if f"/assignments/{ahead}/image/" in url]  # drawn, not fetched
        timings.append(page.evaluate("window.quorumCanvas.switchMs()"))
    print(f"submit to the next 4000x3000 image drawn, loaded ahead: {', '.join(f'{t:.0f} ms' for t in timings)}")
    assert Assignment.objects.filter(annotator=people.annotator, state="submitted").count() == 2
    assert errors == []
