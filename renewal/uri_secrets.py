"""Secrets in URIs (MLflow tracking URIs, database URLs): masked before anything is printed.

Shared by training (run reports, errors) and the service's batch jobs, so that a token passed
as ``https://TOKEN@mlflow.example`` never reaches a console, a scheduler's log or CI output.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit, urlunsplit

TOKEN_MIN_LENGTH = 16  # a user name this long without a password is taken for a token
QUERY_SECRET_MIN_LENGTH = 6  # a secret query value this long is masked wherever it appears
#: Query parameters whose value is a secret (``?token=``, ``?password=``, ``?access_key=``,
#: ``?sig=``): masked like a password. Others (``sslmode=require``) stay readable.
SECRET_PARAMETER = re.compile(r"pass|pwd|token|secret|key|auth|sig|credential", re.IGNORECASE)


def _user_info(uri: str) -> tuple[str | None, str | None, str]:
    """(user name, password, host part) of ``uri``; (None, None, "") when it has no user info."""
    try:
        parts = urlsplit(uri)
        username, password = parts.username, parts.password
    except ValueError:
        return None, None, ""
    if "@" not in parts.netloc:
        return None, None, ""
    return username, password, parts.netloc.rpartition("@")[2]


def mask_uri(uri: str) -> str:
    """``uri`` with the secret of its user info, and the values of its secret query parameters,
    replaced by ``***`` (for output and reports).

    The secret is the password or, without one, the user name itself: ``https://TOKEN@host``
    is how a token is passed to an MLflow server (basic auth with the token as user name).
    """
    username, password, host = _user_info(uri)
    masked = uri
    if password or username:
        netloc = f"{username or ''}:***@{host}" if password else f"***@{host}"
        masked = urlunsplit(urlsplit(uri)._replace(netloc=netloc))
    if not _query_secrets(uri):
        return masked
    parts = urlsplit(masked)
    query = "&".join(  # rebuilt parameter by parameter: the others stay exactly as written
        f"{name}=***" if _secret_name(name) and value else part
        for part in parts.query.split("&")
        for name, _, value in [part.partition("=")])
    return urlunsplit(parts._replace(query=query))


def _secret_name(name: str) -> bool:
    """A parameter name saying its value is a secret, as written or percent-decoded
    (``p%61ssword``: found by review)."""
    return bool(SECRET_PARAMETER.search(name) or SECRET_PARAMETER.search(unquote_plus(name)))


def _query_secrets(uri: str) -> list[str]:
    """The values of ``uri``'s secret query parameters (as written, and percent-decoded)."""
    try:
        query = urlsplit(uri).query
    except ValueError:
        return []
    written = [part.partition("=")[2] for part in query.split("&")
               if _secret_name(part.partition("=")[0]) and part.partition("=")[2]]
    decoded = [value for name, value in parse_qsl(query) if _secret_name(name)]
    return sorted({*written, *(v for v in decoded if v)}, key=len, reverse=True)


def scrub(text: str, uri: str) -> str:
    """``text`` (an error message) with ``uri``'s secret masked wherever it appears.

    A password is replaced everywhere (also percent-decoded). A user name without a password is
    replaced where it stands before an ``@``, and everywhere only when it is token-long: a short
    one (``postgresql://mlflow@db``) is a plain name that also occurs in ordinary words.
    """
    username, password, _host = _user_info(uri)
    text = text.replace(uri, mask_uri(uri))
    for value in _query_secrets(uri):  # a secret query value: after its "=", and anywhere
        text = text.replace(f"={value}", "=***")  # when token-long (a short one, "1", is
        if len(value) >= QUERY_SECRET_MIN_LENGTH:  # in ordinary text: 10.0.0.1, found by
            text = text.replace(value, "***")      # review)
    if password:
        secrets, bare = [password], True
    elif username:
        secrets, bare = [username], len(username) >= TOKEN_MIN_LENGTH
    else:
        return text
    secrets += [unquote(s) for s in secrets if unquote(s) != s]
    for secret in secrets:
        text = text.replace(f"{secret}@", "***@")
        if bare:
            text = text.replace(secret, "***")
    return text


def error_line(exc: BaseException, uri: str | None = None, limit: int = 300) -> str:
    """The first line of ``exc``'s message, ``uri``'s secret masked, then cut to ``limit``.

    Masked first: cut first, a long token crossing the cut would keep its head in clear, which
    ``scrub`` no longer recognises as the secret (found by review: ~180 characters of a JWT)."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return (scrub(first, uri) if uri else first)[:limit]

