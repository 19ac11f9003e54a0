"""Exceptions raised by papertide's engine.

Engine code raises these precise exceptions; only the surfaces (``cli.py`` and,
later, ``web/``) turn them into messages or HTTP errors. Each carries a message
meant for a person: it names what is wrong and where.
"""

from __future__ import annotations


class PapertideError(Exception):
    """Base class for every error papertide raises on purpose."""


class InvalidIdError(PapertideError, ValueError):
    """A string that is not a paper id papertide understands."""


class RecordError(PapertideError, ValueError):
    """A record that cannot be accepted (missing or absurd fields)."""


class FormatError(PapertideError, ValueError):
    """A file whose format is unknown or does not match what was asked for."""


class SourceError(PapertideError):
    """A remote source failed after retries, or answered with an error."""


class SourceRefusedError(SourceError):
    """The source answered, and the answer is a refusal: an HTTP 4xx, an error document.

    Asking again will not help (unlike a plain :class:`SourceError`: the network down,
    timeouts, 5xx after the retries), so callers that retry later tell the two apart.
    """


class NotFoundError(PapertideError, KeyError):
    """A paper (or other object) that is not in the store."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class ConflictError(PapertideError):
    """Something that must be unique already exists (a taken username, a duplicate name)."""


class ConfigError(PapertideError, ValueError):
    """A setting with a value papertide cannot use."""


class StoreError(PapertideError):
    """The store cannot be opened or is not in a state papertide can use."""
