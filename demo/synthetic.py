"""A synthetic street world: rendered scenes whose pedestrian boxes are known exactly.

No public pedestrian data set can be downloaded where Quorum is built and tested, so the
tests and the demo use these scenes: a street (sky, buildings, pavement, road) or an
indoor hall, pedestrians from about 20 to 300 px tall standing on the ground plane (small
ones near the horizon), varied poses and clothing, cars and poles that partly hide some
of them, small crowds marked as ignore regions, and conditions that change the pixels:
sun, overcast, rain streaks, night (dark and noisy), behind glass (a reflection laid
over), and low resolution (downscaled, then upscaled back). Everything is drawn from one
seed, so a seed always gives the same scene. Pure: numpy and Pillow, no Django.

Boxes are absolute pixel xyxy of the whole (amodal) figure, as pedestrian benchmarks
annotate them; `visible` is the fraction of the figure's pixels not hidden by an occluder.
"""

import itertools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Bump when a change to the renderer changes the pixels or boxes a seed gives.
GENERATOR_VERSION = "streets-1"
HD_SIZE = (1280, 720)
LOW_SCALE = 4  # "low" resolution: 1/4 of the pixels per side, scaled back up
MIN_HEIGHT, MAX_HEIGHT = 20.0, 300.0
# An occluded pedestrian shows less than this fraction of its figure.
OCCLUDED_BELOW = 0.8

VOCABULARY = {
    "weather": ("sun", "overcast", "rain", "night"),
    "setting": ("street", "indoor", "behind-glass"),
    "resolution": ("hd", "low"),
}

SKIN = [(241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172)]
CLOTHES = [
    (200, 30, 40), (30, 60, 160), (20, 20, 20), (240, 240, 240), (230, 180, 20),
    (40, 130, 60), (120, 60, 140), (250, 120, 30), (90, 90, 90), (20, 140, 160),
]  # fmt: skip


@dataclass(frozen=True)
class Scene:
    image: Image.Image  # RGB, `size`
    boxes: np.ndarray  # N x 4 xyxy pixels, one per pedestrian
    visible: np.ndarray  # N, fraction of each figure left visible
    ignore: np.ndarray  # M x 4 xyxy pixels: crowds, where single people can't be told apart
    conditions: dict

    @property
    def occluded(self) -> np.ndarray:
        return self.visible < OCCLUDED_BELOW


def condition_cycle() -> list[dict]:
    """Every combination of the vocabulary once, in a fixed order."""
    dimensions = sorted(VOCABULARY)
    return [
        dict(zip(dimensions, values, strict=True)) for values in itertools.product(*(VOCABULARY[d] for d in dimensions))
    ]


def render_scene(*, seed: int, conditions: dict, size: tuple[int, int] = HD_SIZE) -> Scene:
    """Render one scene for `seed` under `conditions` (weather, setting, resolution)."""
    rng = np.random.default_rng(seed)
    width, height = size
    setting = conditions.get("setting", "street")
    horizon = int(height * rng.uniform(0.34, 0.46))
    canvas = Image.new("RGB", size)
    draw = ImageDraw.Draw(canvas)
    if setting == "indoor":
        _draw_hall(draw, rng, size, horizon)
    else:
        _draw_street(draw, rng, size, horizon)

    # Pedestrians stand on the ground: feet lower in the frame means nearer and taller.
    # With the camera at about a person's height, height = k * (feet - horizon).
    k = rng.uniform(0.9, 1.3)
    figures = []
    for _ in range(int(rng.integers(2, 9))):
        person_height = float(np.exp(rng.uniform(np.log(MIN_HEIGHT), np.log(MAX_HEIGHT))))
        feet = horizon + person_height / k
        if feet > height - 2:
            person_height = (height - 2 - horizon) * k
            feet = height - 2
        if person_height < MIN_HEIGHT:
            continue
        centre = rng.uniform(0.05, 0.95) * width
        figures.append((feet, centre, person_height))
    figures.sort()  # far ones first, so nearer figures are drawn over them

    boxes, masks = [], []
    for feet, centre, person_height in figures:
        mask = Image.new("L", size)
        box = _draw_pedestrian(canvas, mask, rng, centre=centre, feet=feet, height=person_height)
        # A figure drawn later hides the ones behind it.
        mask_array = np.asarray(mask) > 0
        for earlier in masks:
            earlier &= ~mask_array
        boxes.append(box)
        masks.append(mask_array)
    full_areas = [mask.sum() for mask in masks]

    # Occluders in front: parked cars and poles.
    occluder = Image.new("L", size)
    occluder_draw = ImageDraw.Draw(occluder)
    if setting != "indoor":
        for _ in range(int(rng.integers(0, 3))):
            _draw_car(draw, occluder_draw, rng, size, horizon, k)
        for _ in range(int(rng.integers(0, 3))):
            _draw_pole(draw, occluder_draw, rng, size, horizon, k)
    hidden = np.asarray(occluder) > 0
    visible = np.array(
        [(mask & ~hidden).sum() / max(area, 1) for mask, area in zip(masks, full_areas, strict=True)], dtype=float
    )

    ignore = []
    if rng.random() < 0.35:
        ignore.append(_draw_crowd(canvas, rng, size, horizon, k))

    canvas = _apply_weather(canvas, rng, conditions.get("weather", "sun"))
    if setting == "behind-glass":
        canvas = _apply_glass(canvas, rng)
    if conditions.get("resolution") == "low":
        small = canvas.resize((width // LOW_SCALE, height // LOW_SCALE), Image.Resampling.BILINEAR)
        canvas = small.resize(size, Image.Resampling.BILINEAR)

    box_array = np.array(boxes, dtype=float).reshape(-1, 4)
    box_array[:, [0, 2]] = box_array[:, [0, 2]].clip(0, width)
    box_array[:, [1, 3]] = box_array[:, [1, 3]].clip(0, height)
    return Scene(
        image=canvas,
        boxes=box_array,
        visible=visible,
        ignore=np.array(ignore, dtype=float).reshape(-1, 4),
        conditions=dict(conditions),
    )


def _colour(rng: np.random.Generator, palette) -> tuple[int, int, int]:
    base = np.array(palette[int(rng.integers(len(palette)))], dtype=float)
    return tuple(int(v) for v in np.clip(base + rng.normal(0, 12, 3), 0, 255))


def _draw_street(draw: ImageDraw.ImageDraw, rng, size, horizon: int) -> None:
    width, height = size
    top, bottom = np.array([90, 150, 220]), np.array([190, 215, 240])
    for y in range(horizon):
        colour = top + (bottom - top) * y / max(horizon, 1)
        draw.line([(0, y), (width, y)], fill=tuple(int(c) for c in colour))
    x = 0
    while x < width:
        building_width = int(rng.integers(60, 220))
        building_top = int(horizon - rng.integers(40, horizon - 10 if horizon > 60 else 50))
        wall = _colour(rng, [(150, 120, 100), (180, 170, 160), (120, 110, 130), (200, 190, 170), (100, 90, 80)])
        draw.rectangle([x, building_top, x + building_width, horizon], fill=wall)
        for wy in range(building_top + 8, horizon - 12, 22):
            for wx in range(x + 8, x + building_width - 14, 20):
                lit = rng.random() < 0.3
                draw.rectangle([wx, wy, wx + 9, wy + 12], fill=(250, 230, 150) if lit else (60, 70, 90))
        x += building_width + int(rng.integers(0, 12))
    pavement = horizon + int((height - horizon) * 0.18)
    draw.rectangle([0, horizon, width, pavement], fill=(165, 160, 155))
    draw.rectangle([0, pavement, width, height], fill=(75, 75, 80))
    for y in range(pavement + 20, height, 60):
        draw.line([(width // 2, y), (width // 2, y + 25)], fill=(230, 230, 230), width=4)


def _draw_hall(draw: ImageDraw.ImageDraw, rng, size, horizon: int) -> None:
    width, height = size
    wall = _colour(rng, [(210, 200, 180), (180, 190, 200), (220, 215, 205)])
    draw.rectangle([0, 0, width, horizon], fill=wall)
    for x in range(int(rng.integers(20, 80)), width, int(rng.integers(150, 260))):
        draw.rectangle([x, horizon - 180, x + 90, horizon], fill=(120, 90, 60))  # doors
    floor = _colour(rng, [(150, 140, 130), (120, 120, 125), (170, 160, 140)])
    draw.rectangle([0, horizon, width, height], fill=floor)
    for y in range(horizon, height, 40):
        draw.line([(0, y), (width, y)], fill=tuple(max(c - 25, 0) for c in floor), width=2)


def _draw_pedestrian(canvas: Image.Image, mask: Image.Image, rng, *, centre: float, feet: float, height: float) -> list:
    """Draw one figure on `canvas` and `mask`; returns its tight xyxy box."""
    draw, mask_draw = ImageDraw.Draw(canvas), ImageDraw.Draw(mask)
    head_r = height * 0.065
    shoulder_y = feet - height * 0.82
    hip_y = feet - height * 0.47
    half_width = height * rng.uniform(0.11, 0.14)
    stride = height * rng.uniform(0.0, 0.17)
    arm_swing = height * rng.uniform(-0.1, 0.1)
    shirt, trousers, skin = _colour(rng, CLOTHES), _colour(rng, CLOTHES), _colour(rng, SKIN)
    line = max(int(height * 0.075), 1)
    parts = [
        ("ellipse", [centre - head_r, feet - height, centre + head_r, feet - height + 2 * head_r], skin),
        ("rectangle", [centre - half_width, shoulder_y, centre + half_width, hip_y + height * 0.04], shirt),
        ("line", [(centre - half_width * 0.5, hip_y), (centre - stride / 2, feet)], trousers),
        ("line", [(centre + half_width * 0.5, hip_y), (centre + stride / 2, feet)], trousers),
        ("line", [(centre - half_width, shoulder_y + line), (centre - half_width - arm_swing / 2, hip_y)], shirt),
        ("line", [(centre + half_width, shoulder_y + line), (centre + half_width + arm_swing / 2, hip_y)], shirt),
    ]
    for kind, xy, colour in parts:
        for target, fill in ((draw, colour), (mask_draw, 255)):
            if kind == "line":
                target.line(xy, fill=fill, width=line)
            else:
                getattr(target, kind)(xy, fill=fill)
    ys, xs = np.nonzero(np.asarray(mask))
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _ground_height(rng, size, horizon: int, k: float, low: float, high: float) -> tuple[float, float]:
    """A feet line below the horizon and the height a person standing there would have."""
    feet = rng.uniform(horizon + (size[1] - horizon) * low, horizon + (size[1] - horizon) * high)
    return feet, (feet - horizon) * k


def _draw_car(draw, occluder_draw, rng, size, horizon: int, k: float) -> None:
    feet, person_height = _ground_height(rng, size, horizon, k, 0.12, 0.5)
    car_length, car_height = person_height * rng.uniform(2.2, 2.8), person_height * rng.uniform(0.45, 0.55)
    x = rng.uniform(-car_length / 3, size[0] - car_length * 2 / 3)
    body = [x, feet - car_height, x + car_length, feet - car_height * 0.15]
    colour = _colour(rng, CLOTHES)
    for target, fill in ((draw, colour), (occluder_draw, 255)):
        target.rounded_rectangle(body, radius=car_height * 0.2, fill=fill)
        target.rectangle(
            [x + car_length * 0.2, feet - car_height * 1.45, x + car_length * 0.75, feet - car_height], fill=fill
        )
        for wheel_x in (x + car_length * 0.2, x + car_length * 0.8):
            r = car_height * 0.22
            target.ellipse([wheel_x - r, feet - 2 * r, wheel_x + r, feet], fill=(20, 20, 20) if target is draw else 255)


def _draw_pole(draw, occluder_draw, rng, size, horizon: int, k: float) -> None:
    feet, person_height = _ground_height(rng, size, horizon, k, 0.2, 1.0)
    x = rng.uniform(0, size[0])
    half = max(person_height * 0.04, 1.5)
    pole = [x - half, feet - person_height * 1.8, x + half, feet]
    draw.rectangle(pole, fill=(60, 60, 65))
    occluder_draw.rectangle(pole, fill=255)


def _draw_crowd(canvas: Image.Image, rng, size, horizon: int, k: float) -> list:
    """A tight group of small people far away: an ignore region, not single boxes."""
    feet, person_height = _ground_height(rng, size, horizon, k, 0.02, 0.12)
    person_height = max(person_height, 14.0)
    count = int(rng.integers(5, 12))
    start = rng.uniform(0.05, 0.75) * size[0]
    mask = Image.new("L", size)
    for index in range(count):
        centre = start + index * person_height * rng.uniform(0.12, 0.25)
        _draw_pedestrian(canvas, mask, rng, centre=centre, feet=feet + rng.uniform(-2, 2), height=person_height)
    ys, xs = np.nonzero(np.asarray(mask))
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _apply_weather(canvas: Image.Image, rng, weather: str) -> Image.Image:
    array = np.asarray(canvas, dtype=np.float32)
    if weather == "sun":
        array = array * 1.08 + 8
    elif weather == "overcast":
        grey = array.mean(axis=2, keepdims=True)
        array = (array * 0.55 + grey * 0.45) * 0.85 + 10
    elif weather == "rain":
        grey = array.mean(axis=2, keepdims=True)
        array = (array * 0.6 + grey * 0.4) * 0.7
        streaks = Image.new("L", canvas.size)
        streak_draw = ImageDraw.Draw(streaks)
        slant = rng.uniform(-0.3, 0.3)
        for _ in range(int(canvas.size[0] * canvas.size[1] / 900)):
            x, y = rng.uniform(0, canvas.size[0]), rng.uniform(0, canvas.size[1])
            length = rng.uniform(10, 30)
            streak_draw.line([(x, y), (x + slant * length, y + length)], fill=int(rng.uniform(60, 140)), width=1)
        array = array + np.asarray(streaks, dtype=np.float32)[..., None] * 0.6
    elif weather == "night":
        array = array * 0.22 + rng.normal(0, 9, array.shape)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


def _apply_glass(canvas: Image.Image, rng) -> Image.Image:
    """Seen through a shop window: a blurred, mirrored reflection and a faint tint."""
    reflection = canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT).filter(ImageFilter.GaussianBlur(6))
    tinted = Image.blend(canvas, Image.new("RGB", canvas.size, (170, 200, 210)), 0.12)
    return Image.blend(tinted, reflection, float(rng.uniform(0.22, 0.35)))
