"""Response headers Django does not set on its own."""

from django.conf import settings

from config.errors import bad_request
from config.media import media_policy
from config.pagination import MAX_INTEGER


class ContentSecurityPolicyMiddleware:
    """Send `settings.CONTENT_SECURITY_POLICY` on every response that has none.

    The policy forbids inline script, so pages load their behaviour from static files.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = media_policy(policy)
        return response


class PathIdBoundsMiddleware:
    """Refuse (400, naming it) an id in the path larger than a database integer holds, before
    the view runs: the path converters accept any digits, the database does not."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        for name, value in view_kwargs.items():
            if isinstance(value, int) and not isinstance(value, bool) and value > MAX_INTEGER:
                return bad_request(
                    request, field=name, message=f"{name} is out of range: ids are at most {MAX_INTEGER}."
                )
        return None


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every answer to a signed-in or token-bearing caller that
    sets no policy of its own: such answers are private and some show a secret once (a new
    API token), which no browser cache or proxy may keep. Views that allow caching (the
    image files) say so themselves."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        if (signed_in or "HTTP_AUTHORIZATION" in request.META) and not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
        return response
