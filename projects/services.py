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
