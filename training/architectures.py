"""The detection architectures a run may train: the model `.yaml` files that ship with ultralytics."""

import re
from functools import lru_cache
from pathlib import Path

SCALES = "nsmlx"


@lru_cache(maxsize=1)
def architectures() -> tuple[str, ...]:
    """The detection model `.yaml` files that ship with ultralytics, by the names ultralytics
    builds them from (`yolo26n.yaml` is `yolo26.yaml` at scale n): every config whose head
    ends in a plain detection layer. (yaml and ultralytics load here, on first use: a web
    process that never lists architectures does not pay for them.)"""
    import yaml
    from ultralytics import cfg

    names = []
    for path in sorted(Path(cfg.__file__).parent.glob("models/**/*.yaml")):
        spec = yaml.safe_load(path.read_text())
        head = spec.get("head") or []
        if not head or head[-1][2] not in {"Detect", "v10Detect"}:
            continue
        scales = spec.get("scales") or {}
        # ultralytics reads the scale as the letter after the first run of digits
        parts = re.match(r"^(\D*\d+)(.*)$", path.stem)
        is_scaled_file = re.match(r"^\D*\d+[nslmx](-|$)", path.stem)  # yolov10n.yaml: one file per scale
        if scales and parts and not is_scaled_file:
            names += [f"{parts[1]}{scale}{parts[2]}.yaml" for scale in SCALES if scale in scales]
        else:
            names.append(path.name)
    return tuple(sorted(set(names)))
