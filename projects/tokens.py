"""How a person's API token is kept: the sha256 of its key, and a marker of the password it
was made under (pure helpers, shared by the service that makes tokens and the
authentication that checks them)."""

import hashlib

from django.utils.crypto import salted_hmac

# Characters of a token kept in clear, so that its owner and staff can tell tokens apart.
TOKEN_PREFIX_LENGTH = 8


def api_token_key_sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_password_marker(user) -> str:
    """Keyed hash of `user`'s stored password hash: it changes whenever the password does."""
    return salted_hmac("quorum.api-token", user.password, algorithm="sha256").hexdigest()
