"""Writes of projects, memberships and API tokens."""

import secrets
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from config.errors import Conflict, ValidationFailed
from projects.models import ApiToken, Membership, Project, Role, default_conditions
from projects.tokens import TOKEN_PREFIX_LENGTH, api_token_key_sha256, api_token_password_marker

# Limits on what a project holds (characters, or items).
DESCRIPTION_MAX = 5000
LABEL_MAX = 64
LABELS_MAX = 100
CONDITION_DIMENSIONS_MAX = 20
CONDITION_VALUES_MAX = 50


def project_create(
    *,
    name: str,
    created_by: AbstractBaseUser | None,
    description: str = "",
    labels: list[str] | None = None,
    overlap_k: int = 3,
    train_percent: int = 80,
    val_percent: int = 10,
    test_percent: int = 10,
    split_seed: int | None = None,
    conditions: dict[str, list[str]] | None = None,
    reviewers_annotate: bool = False,
) -> Project:
    """Create a project. Names are unique, ignoring case; split percentages sum to 100."""
    name = name.strip()
    if not name or len(name) > 200:
        message = "A project needs a name of at most 200 characters."
        raise ValidationFailed(message, fields={"name": [message]})
    if len(description) > DESCRIPTION_MAX:
        message = f"A description is at most {DESCRIPTION_MAX} characters."
        raise ValidationFailed(message, fields={"description": [message]})
    labels = [label.strip() for label in (labels or ["pedestrian"])]
    if not all(labels) or len(set(labels)) != len(labels):
        raise ValidationFailed(
            "Labels must be distinct and not blank.", fields={"labels": ["Labels must be distinct and not blank."]}
        )
    if len(labels) > LABELS_MAX or max(map(len, labels)) > LABEL_MAX:
        message = f"At most {LABELS_MAX} labels of at most {LABEL_MAX} characters each."
        raise ValidationFailed(message, fields={"labels": [message]})
    if overlap_k < 1:
        raise ValidationFailed("Overlap k must be at least 1.", fields={"overlap_k": ["Must be at least 1."]})
    if train_percent + val_percent + test_percent != 100 or min(train_percent, val_percent, test_percent) < 1:
        message = "Split percentages must each be at least 1 and sum to 100."
        raise ValidationFailed(message, fields={"train_percent": [message]})
    conditions = default_conditions() if conditions is None else conditions
    if len(conditions) > CONDITION_DIMENSIONS_MAX:
        message = f"At most {CONDITION_DIMENSIONS_MAX} condition dimensions."
        raise ValidationFailed(message, fields={"conditions": [message]})
    for dimension, values in conditions.items():
        values = [value.strip() for value in values]
        if not dimension.strip() or not values or not all(values) or len(set(values)) != len(values):
            message = f"Condition {dimension!r} needs distinct, non-blank values."
            raise ValidationFailed(message, fields={"conditions": [message]})
        if len(dimension) > LABEL_MAX or len(values) > CONDITION_VALUES_MAX or max(map(len, values)) > LABEL_MAX:
            message = (
                f"Condition {dimension[:LABEL_MAX]!r}: a name and its values are at most {LABEL_MAX} characters, "
                f"with at most {CONDITION_VALUES_MAX} values."
            )
            raise ValidationFailed(message, fields={"conditions": [message]})
        conditions[dimension] = values
    extra = {"split_seed": split_seed} if split_seed is not None else {}
    if Project.objects.filter(name__iexact=name).exists():
        raise Conflict(f"A project named {name!r} already exists.", code="duplicate_name")
    try:
        with transaction.atomic():
            return Project.objects.create(
                name=name,
                description=description,
                labels=labels,
                overlap_k=overlap_k,
                train_percent=train_percent,
                val_percent=val_percent,
                test_percent=test_percent,
                conditions=conditions,
                reviewers_annotate=reviewers_annotate,
                created_by=created_by,
                **extra,
            )
    except IntegrityError as error:
        # Two requests raced past the check above.
        raise Conflict(f"A project named {name!r} already exists.", code="duplicate_name") from error


@transaction.atomic
def membership_set(*, project: Project, user_id: int, role: Role) -> Membership:
    """Give the user `user_id` the `role` in `project`, adding them if they are not a member."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ValidationFailed("No active user with that id.", fields={"user": ["No active user with that id."]})
    membership, _ = Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership) -> None:
    membership.delete()


@dataclass(frozen=True)
class IssuedToken:
    """A token as made: its key is shown once and never stored."""

    key: str
    prefix: str
    created: datetime


@transaction.atomic
def api_token_rotate(*, user: AbstractBaseUser) -> IssuedToken:
    """Issue a new API token for `user`, revoking the one they had. Only its sha256 and first
    characters are stored; the key is in the returned value, once."""
    key = secrets.token_hex(20)
    ApiToken.objects.filter(user=user).delete()
    token = ApiToken.objects.create(
        user=user,
        prefix=key[:TOKEN_PREFIX_LENGTH],
        key_sha256=api_token_key_sha256(key),
        password_marker=api_token_password_marker(user),
    )
    return IssuedToken(key=key, prefix=token.prefix, created=token.created_at)


@transaction.atomic
def api_token_revoke(*, user: AbstractBaseUser) -> bool:
    """Revoke the API token of `user`; False when they had none."""
    deleted, _ = ApiToken.objects.filter(user=user).delete()
    return deleted > 0


# The settings a project admin may change (POST /projects/ sets the first ones at creation).
SETTINGS = (
    "name", "description", "labels", "overlap_k", "lease_minutes", "train_percent", "val_percent", "test_percent",
    "split_seed", "conditions", "gold_rate", "gold_pause_after", "gold_min_f1", "allow_suggestions",
    "reviewers_annotate",
)  # fmt: skip
SPLIT_SETTINGS = ("train_percent", "val_percent", "test_percent", "split_seed")
LEASE_MINUTES_MAX = 7 * 24 * 60
K_MAX = 50


def project_settings_check(*, project: Project, changes: dict) -> dict:
    """The `changes` (setting -> new value) that differ from `project`'s, checked against
    the project's invariants; a ValidationFailed (400) naming each refused setting otherwise.

    - Split settings (percentages, seed) are frozen once the project has images: each image
      was split as it arrived, and a change would split later ones differently.
    - k is never below the submissions an image already has.
    - Labels in use by anyone's boxes, and condition values the images carry, stay.
    - Gold rules: a rate and a minimum F1 between 0 and 1; pausing on gold needs gold tasks.
    The project's images and boxes are read through its reverse relations (the apps that
    hold them sit above this one)."""
    unknown = sorted(set(changes) - set(SETTINGS))
    if unknown:
        message = f"Not a project setting: {', '.join(unknown)}."
        raise ValidationFailed(message, fields={name: [message] for name in unknown})
    changed = {name: value for name, value in changes.items() if getattr(project, name) != value}
    problems: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    has_images = project.images.exists()
    for name in SPLIT_SETTINGS:
        if name in changed and has_images:
            refuse(name, "Split settings are frozen once the project has images: each was split as it arrived.")
    after = {name: changed.get(name, getattr(project, name)) for name in SETTINGS}
    if any(name in changed for name in SPLIT_SETTINGS[:3]) and not problems:
        shares = [after[name] for name in SPLIT_SETTINGS[:3]]
        if sum(shares) != 100 or min(shares) < 1:
            refuse("train_percent", "Split percentages must each be at least 1 and sum to 100.")
    if "overlap_k" in changed:
        k = changed["overlap_k"]
        most = project.images.order_by("-submitted_count").values_list("submitted_count", flat=True).first() or 0
        if not 1 <= k <= K_MAX:
            refuse("overlap_k", f"k is 1 to {K_MAX}.")
        elif k < most:
            refuse("overlap_k", f"An image already has {most} submissions: k cannot be lower than {most}.")
    if "lease_minutes" in changed and not 1 <= changed["lease_minutes"] <= LEASE_MINUTES_MAX:
        refuse("lease_minutes", f"A lease is 1 to {LEASE_MINUTES_MAX} minutes.")
    for name in ("gold_rate", "gold_min_f1"):
        if name in changed and not 0 <= changed[name] <= 1:
            refuse(name, "Between 0 and 1.")
    if "gold_pause_after" in changed and not 0 <= changed["gold_pause_after"] <= 1000:
        refuse("gold_pause_after", "0 (never) to 1000 gold tasks.")
    if after["gold_pause_after"] and not after["gold_rate"] and {"gold_pause_after", "gold_rate"} & set(changed):
        refuse("gold_pause_after", "Pausing on gold tasks needs a gold rate above 0: with none, nobody is checked.")
    if "name" in changed:
        name = (changed["name"] or "").strip()
        if not name or len(name) > 200:
            refuse("name", "A project needs a name of at most 200 characters.")
        elif Project.objects.filter(name__iexact=name).exclude(pk=project.pk).exists():
            refuse("name", f"A project named {name!r} already exists.")
        changed["name"] = name
    if "description" in changed and len(changed["description"] or "") > DESCRIPTION_MAX:
        refuse("description", f"A description is at most {DESCRIPTION_MAX} characters.")
    if "labels" in changed:
        _labels_check(project, changed["labels"], refuse)
    if "conditions" in changed:
        _conditions_check(project, changed["conditions"], has_images, refuse)
    if problems:
        first = next(iter(problems.values()))[0]
        raise ValidationFailed(f"{first} Nothing was changed.", fields=problems)
    return changed


def _labels_check(project: Project, labels, refuse) -> None:
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        refuse("labels", "A list of at least one label.")
        return
    stripped = [label.strip() for label in labels]
    if not all(stripped) or len(set(stripped)) != len(stripped):
        refuse("labels", "Labels must be distinct and not blank.")
    elif len(stripped) > LABELS_MAX or max(map(len, stripped)) > LABEL_MAX:
        refuse("labels", f"At most {LABELS_MAX} labels of at most {LABEL_MAX} characters each.")
    removed = sorted(set(project.labels) - set(stripped))
    in_use = sorted(
        set(
            project.images.filter(annotations__boxes__label__in=removed).values_list(
                "annotations__boxes__label", flat=True
            )
        )
    )
    if in_use:
        refuse("labels", f"Label(s) {', '.join(in_use)} are on boxes already; they stay.")


def _conditions_check(project: Project, conditions, has_images: bool, refuse) -> None:
    if not isinstance(conditions, dict):
        refuse("conditions", "Dimension -> list of values.")
        return
    if len(conditions) > CONDITION_DIMENSIONS_MAX:
        refuse("conditions", f"At most {CONDITION_DIMENSIONS_MAX} condition dimensions.")
    for dimension, values in conditions.items():
        if (
            not isinstance(values, list)
            or not dimension.strip()
            or not values
            or not all(isinstance(value, str) and value.strip() for value in values)
            or len(set(values)) != len(values)
        ):
            refuse("conditions", f"Condition {dimension[:LABEL_MAX]!r} needs distinct, non-blank values.")
        elif len(dimension) > LABEL_MAX or len(values) > CONDITION_VALUES_MAX or max(map(len, values)) > LABEL_MAX:
            refuse("conditions", f"Condition {dimension[:LABEL_MAX]!r}: names and values of at most {LABEL_MAX} "
                                 f"characters, at most {CONDITION_VALUES_MAX} values.")  # fmt: skip
    if has_images:
        dropped = [
            f"{dimension}={value}"
            for dimension, values in project.conditions.items()
            for value in values
            if value not in conditions.get(dimension, [])
        ]
        if dropped:
            refuse(
                "conditions",
                f"The images are split by their conditions: {', '.join(dropped)} stay (add, do not remove).",
            )


@transaction.atomic
def project_update(*, project: Project, **changes) -> Project:
    """Change `project`'s settings (`SETTINGS`), checked by `project_settings_check`; the
    project as saved. The API, the settings page and Django admin all change a project here."""
    locked = Project.objects.select_for_update().get(pk=project.pk)
    changed = project_settings_check(project=locked, changes=changes)
    for name, value in changed.items():
        setattr(locked, name, value)
    if changed:
        try:
            with transaction.atomic():
                locked.save(update_fields=list(changed))
        except IntegrityError as error:
            message = "Those settings break a rule of the project's table (a name taken meanwhile?)."
            raise Conflict(message, code="conflict") from error
    return locked
