"""Routing: which model version answers a prediction request, by the project's ordered rules."""

import hashlib
from dataclasses import dataclass

from serving.models import RoutingRule


@dataclass(frozen=True)
class Route:
    """The outcome: the rule that matched (None: no rule, the champion), the model id that
    answers (None: the champion), whether it is the canary, and a shadow model id."""

    rule: RoutingRule | None
    model_id: int | None
    is_canary: bool = False
    shadow_id: int | None = None


def canary_draw(request_id: str) -> float:
    """A number in [0, 1) fixed by the request id: the same request always routes the same way."""
    return int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64


def rule_matches(rule: RoutingRule, *, client_id: int | None, width: int, height: int) -> bool:
    if rule.client_id is not None and rule.client_id != client_id:
        return False
    if rule.max_width is not None and width > rule.max_width:
        return False
    return not (rule.max_height is not None and height > rule.max_height)


def route(rules: list[RoutingRule], *, client_id: int | None, width: int, height: int, request_id: str) -> Route:
    """The first active rule (in order) that matches; its canary answers when the request's
    draw falls under the canary share."""
    for rule in rules:
        if not rule.is_active or not rule_matches(rule, client_id=client_id, width=width, height=height):
            continue
        if rule.canary_id is not None and canary_draw(request_id) < rule.canary_share:
            return Route(rule=rule, model_id=rule.canary_id, is_canary=True, shadow_id=rule.shadow_id)
        return Route(rule=rule, model_id=rule.model_id, shadow_id=rule.shadow_id)
    return Route(rule=None, model_id=None)
