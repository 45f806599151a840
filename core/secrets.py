"""URLs that may carry a password, and the one function that hides it for output.

``redact_url`` is what every message, log line and status screen shows of a URL;
``SecretUrl`` is the settings type of such URLs: printed, formatted or repr'd it shows the
redacted form, and only ``get_secret_value()`` gives the URL to connect with.

>>> redact_url("http://user:s3cr3tPW@127.0.0.1:1/")
'http://user:***@127.0.0.1:1/'
>>> redact_url("https://ch.example:8443")
'https://ch.example:8443'
>>> url = SecretUrl("http://user:s3cr3tPW@ch:8123")
>>> url
SecretUrl('http://user:***@ch:8123')
>>> f"store {url:>25}|"
'store   http://user:***@ch:8123|'
>>> url.get_secret_value()
'http://user:s3cr3tPW@ch:8123'
"""

from __future__ import annotations

from pydantic import SecretStr

__all__ = ["SecretUrl", "redact_url"]

_MASK = "***"


def redact_url(url: str) -> str:
    """``url`` with the password of any ``user:password@`` replaced by ``***``.

    Text that is not a URL with credentials comes back unchanged, so it is safe to apply
    to any value a message quotes:

    >>> redact_url("ftp://:pw@host")
    'ftp://:***@host'
    >>> redact_url("not a url")
    'not a url'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    return f"{scheme}://{user}{colon}{_MASK if colon else ''}@{host}{slash}{path}"


class SecretUrl(SecretStr):
    """A URL whose password never prints: ``str``, ``repr`` and formats show it redacted."""

    def _display(self) -> str:
        return redact_url(self.get_secret_value())

    def __format__(self, spec: str) -> str:
        return format(self._display(), spec)
