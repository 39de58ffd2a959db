"""Base weights: starting points for training from outside the project.

Two ways in, one rule: no file from a person is ever unpickled.

- An Ultralytics `.pt` is a pickle: loading one runs code. Only an operator, with a shell on
  the server, registers one (`manage.py base_weights_add`), vouching for the file; the web
  and the API never accept one.
- A safetensors file is tensors and a JSON header, nothing that runs. Project admins upload
  one with the ultralytics architecture it belongs to and its class names; every tensor's
  name, dtype and shape is checked against that architecture, from the header alone (a
  header that lies about sizes is refused before the body is read), before anything is
  stored.

Every file is stored under its sha256 and checked again before each load
(`base_weights_copy`): a file changed on disk fails the run with that reason.
"""

import hashlib
import json
import math
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from boxes.formats import JsonTooDeep, json_parse
from config.errors import ValidationFailed
from projects.models import Membership, Role
from training.architectures import architectures
from training.models import BaseWeights

# safetensors' dtypes and their sizes in bytes
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
FLOAT_DTYPES = {"F32", "F16", "BF16"}
MAX_HEADER_BYTES = 16 * 1024 * 1024
NAME_MAX = 100
CLASSES_MAX = 1000


class BaseWeightsChanged(RuntimeError):
    """A registered file no longer has its sha256: nothing is loaded."""


def _refuse(message: str, field: str = "file") -> ValidationFailed:
    return ValidationFailed(message, fields={field: [message]})


def base_weights_for(user: AbstractBaseUser) -> QuerySet[BaseWeights]:
    """The base weights `user` may start runs from: the shared ones and their own uploads
    (staff: all of them)."""
    rows = BaseWeights.objects.all()
    if user.is_staff:
        return rows
    return rows.filter(Q(is_shared=True) | Q(added_by=user))


def may_upload_base_weights(user: AbstractBaseUser) -> bool:
    """Staff, and the admins of at least one project."""
    return bool(user.is_staff or Membership.objects.filter(user=user, role=Role.ADMIN).exists())


@lru_cache(maxsize=32)
def architecture_tensors(architecture: str, classes: int) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (safetensors dtype, shape) of an ultralytics architecture's state dict with
    `classes` classes (float tensors as F32)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel(architecture, nc=classes, verbose=False)
    return {
        name: ("F32" if tensor.is_floating_point() else "I64", tuple(tensor.shape))
        for name, tensor in model.state_dict().items()
    }


def safetensors_header(file: BinaryIO, *, size: int) -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors file, read from its header alone, with every
    offset checked against the file's `size`: ValidationFailed naming the first fault."""
    file.seek(0)
    prefix = file.read(8)
    if len(prefix) < 8:
        raise _refuse("Not a safetensors file: it is shorter than its 8-byte header length.")
    length = int.from_bytes(prefix, "little")
    if length > MAX_HEADER_BYTES or length > size - 8:
        raise _refuse(
            f"Not a safetensors file, or truncated: its header says it is {length:,} bytes long, "
            f"the file has {max(size - 8, 0):,} after the length."
        )
    raw = file.read(length)
    try:
        header = json_parse(raw)
    except (JsonTooDeep, ValueError) as error:
        raise _refuse(f"The safetensors header is not valid JSON: {error}") from error
    if not isinstance(header, dict):
        raise _refuse("The safetensors header must be a JSON object.")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise _refuse("The safetensors __metadata__ must be an object of strings.")
    body = size - 8 - length
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or entry.get("dtype") not in DTYPE_BYTES:
            raise _refuse(f"Tensor {name}: unknown dtype {entry.get('dtype') if isinstance(entry, dict) else entry!r}.")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (
            isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
        ):
            raise _refuse(f"Tensor {name}: its shape must be a list of sizes.")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(n, int) for n in offsets)):
            raise _refuse(f"Tensor {name}: data_offsets must be [begin, end].")
        begin, end = offsets
        if not 0 <= begin <= end:
            raise _refuse(f"Tensor {name}: data_offsets [{begin}, {end}] are not in order.")
        if end > body:
            raise _refuse(
                f"Tensor {name} claims bytes {begin:,} to {end:,}, but the file holds {body:,} after its header: "
                "truncated, or a header that lies about its sizes."
            )
        if end - begin != math.prod(shape) * DTYPE_BYTES[entry["dtype"]]:
            raise _refuse(f"Tensor {name}: {end - begin} bytes do not hold a {entry['dtype']} tensor of shape {shape}.")
        spans.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise _refuse(f"Tensor {name}: its bytes do not follow the previous tensor's (a gap or an overlap).")
        position = end
    if position != body:
        raise _refuse(f"The file has {body - position:,} bytes after its last tensor.")
    return {name: (entry["dtype"], tuple(entry["shape"])) for name, entry in header.items()}, metadata


def safetensors_check(tensors: dict, *, architecture: str, classes: list[str]) -> None:
    """Every tensor fits the architecture with that many classes, and none is missing
    (BatchNorm's step counters may be): ValidationFailed naming the first that does not."""
    expected = architecture_tensors(architecture, len(classes))
    for name, (dtype, shape) in tensors.items():
        if name not in expected:
            raise _refuse(f"Tensor {name} is not part of {architecture} (unknown tensor name).")
        want_dtype, want_shape = expected[name]
        if (want_dtype == "F32" and dtype not in FLOAT_DTYPES) or (want_dtype == "I64" and dtype != "I64"):
            raise _refuse(f"Tensor {name} is {dtype}; {architecture} has it as {want_dtype}.")
        if shape != want_shape:
            raise _refuse(
                f"Tensor {name} has shape {list(shape)}; {architecture} with {len(classes)} classes has "
                f"{list(want_shape)}."
            )
    missing = [name for name in expected if name not in tensors and not name.endswith("num_batches_tracked")]
    if missing:
        raise _refuse(f"Tensor {missing[0]} of {architecture} is missing ({len(missing)} missing in all).")


def _classes(value: str | list[str]) -> list[str]:
    names = [name.strip() for name in value.split(",")] if isinstance(value, str) else [str(n).strip() for n in value]
    if not names or any(not name or len(name) > 100 for name in names) or len(names) > CLASSES_MAX:
        raise _refuse(f"Classes: 1 to {CLASSES_MAX} names of 1 to 100 characters, comma-separated.", "classes")
    if len(set(names)) != len(names):
        raise _refuse("Classes: each name once.", "classes")
    return names


def _store(*, file: BinaryIO, size: int, extension: str, **fields) -> BaseWeights:
    """Copy the file into storage under its sha256 and write the row; nothing is left behind
    when the row cannot be written."""
    digest = hashlib.sha256()
    file.seek(0)
    for chunk in iter(lambda: file.read(1 << 20), b""):
        digest.update(chunk)
    sha256 = digest.hexdigest()
    file.seek(0)
    name = f"base-weights/{sha256}.{extension}"
    is_new = not default_storage.exists(name)
    stored = default_storage.save(name, File(file)) if is_new else name
    try:
        with transaction.atomic():
            return BaseWeights.objects.create(sha256=sha256, size=size, file=stored, **fields)
    except IntegrityError as error:
        if is_new:
            default_storage.delete(stored)
        raise _refuse(f"Base weights named {fields['name']!r} exist already.", "name") from error


def base_weights_upload(
    *, user: AbstractBaseUser, file: BinaryIO, size: int, name: str, architecture: str, classes: str | list[str]
) -> BaseWeights:
    """A project admin's safetensors file, checked tensor by tensor against `architecture`;
    theirs (and staff's) to use."""
    return base_weights_upload_checked(
        file=file,
        size=size,
        name=name,
        architecture=architecture,
        classes=classes,
        source=f"uploaded by {user.get_username()}",
        user=user,
        is_shared=False,
    )


def base_weights_upload_checked(
    *,
    file: BinaryIO,
    size: int,
    name: str,
    architecture: str,
    classes: str | list[str],
    source: str,
    user: AbstractBaseUser | None,
    is_shared: bool,
) -> BaseWeights:
    """A safetensors file registered once every tensor fits `architecture` with `classes`."""
    name = (name or "").strip()
    if not 0 < len(name) <= NAME_MAX:
        raise _refuse(f"A name of 1 to {NAME_MAX} characters.", "name")
    if architecture not in architectures():
        raise _refuse(f"{architecture!r} is not a detection .yaml that ships with ultralytics.", "architecture")
    class_names = _classes(classes)
    if size > settings.QUORUM_MAX_BASE_WEIGHTS_BYTES:
        limit = settings.QUORUM_MAX_BASE_WEIGHTS_BYTES
        raise _refuse(f"The file is {size / 2**20:.0f} MiB; the limit is {limit / 2**20:.0f} MiB.")
    tensors, _ = safetensors_header(file, size=size)
    safetensors_check(tensors, architecture=architecture, classes=class_names)
    return _store(
        file=file,
        size=size,
        extension="safetensors",
        name=name,
        format=BaseWeights.Format.SAFETENSORS,
        architecture=architecture,
        classes=class_names,
        source=source,
        is_shared=is_shared,
        added_by=user,
    )


def base_weights_add(*, path: Path, name: str, source: str = "") -> BaseWeights:
    """An operator's Ultralytics `.pt`, vouched for by whoever runs the command (it is
    unpickled here, once, to read its architecture and classes)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    model = YOLO(str(path))
    yaml = getattr(model.model, "yaml", {}) or {}
    architecture = yaml.get("yaml_file") or getattr(model.model, "yaml_file", "") or "unknown"
    classes = [model.names[index] for index in sorted(model.names)]
    with path.open("rb") as file:
        return _store(
            file=file,
            size=path.stat().st_size,
            extension="pt",
            name=name,
            format=BaseWeights.Format.PT,
            architecture=Path(architecture).name,
            classes=classes,
            source=source or f"operator file {path}",
            is_shared=True,
            added_by=None,
        )


def base_weights_copy(base: BaseWeights, target: Path) -> Path:
    """The stored file copied to `target` once its sha256 matched the registry's;
    BaseWeightsChanged (and nothing written) otherwise."""
    with default_storage.open(base.file, "rb") as source:
        data = source.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != base.sha256:
        raise BaseWeightsChanged(
            f"The base weights {base.name!r} changed on disk since they were registered "
            f"(sha256 {actual[:12]}..., registered {base.sha256[:12]}...); refusing to load them."
        )
    target.write_bytes(data)
    return target


def model_export_safetensors(
    *,
    weights: Path,
    architecture: str,
    classes: list[str],
    target: Path,
    half: bool = False,
    extra: dict[str, str] | None = None,
) -> dict:
    """A Quorum model's `.pt` (a file this installation wrote) as a safetensors state dict
    with its architecture and classes in the metadata (`half`: float tensors in 16 bits,
    half the size); the metadata written."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from safetensors.torch import save_file
    from ultralytics import YOLO

    state = {}
    for name, tensor in YOLO(str(weights)).model.float().state_dict().items():
        if tensor.is_floating_point():
            tensor = tensor.detach().half() if half else tensor.detach().float()
        state[name] = tensor.contiguous()
    metadata = {"architecture": architecture, "classes": json.dumps(classes), "written_by": "Quorum", **(extra or {})}
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part:
        save_file(state, part.name, metadata=metadata)
    Path(part.name).replace(target)
    return metadata
