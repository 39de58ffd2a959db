"""People's API tokens: `Authorization: Token <key>`, looked up by the key's sha256."""

import hmac

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from projects.models import ApiToken
from projects.tokens import api_token_key_sha256, api_token_password_marker


class ApiTokenAuthentication(BaseAuthentication):
    """`request.user` is the token's owner, while they are active and their password is the
    one the token was made under (a new password ends every token made before it)."""

    keyword = "Token"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send 'Authorization: Token <key>'.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        token = ApiToken.objects.select_related("user").filter(key_sha256=api_token_key_sha256(key)).first()
        if token is None or not token.user.is_active:
            raise AuthenticationFailed("Invalid token.")
        if not hmac.compare_digest(token.password_marker, api_token_password_marker(token.user)):
            token.delete()
            raise AuthenticationFailed("This token ended when its owner's password changed; make a new one.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
