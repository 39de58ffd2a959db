"""The one pagination of list answers: `limit` and `offset`, with `limit` capped."""

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

# The largest value a database integer (and so an OFFSET) holds.
MAX_INTEGER = 2**63 - 1


class Pagination(LimitOffsetPagination):
    """DRF's limit/offset pages: 100 items unless `limit` says otherwise, never more than
    `max_limit` (a larger `limit` gives `max_limit`); an `offset` past what a database
    integer holds is refused (400 naming it) instead of reaching the database."""

    default_limit = 100
    max_limit = 500

    def get_offset(self, request) -> int:
        raw = request.query_params.get(self.offset_query_param, "")
        if raw.strip().isdigit() and int(raw) > MAX_INTEGER:
            raise ValidationError({self.offset_query_param: [f"Must be at most {MAX_INTEGER}."]})
        return super().get_offset(request)
