"""The client's exception hierarchy.

Shallow on purpose, split by what the caller must do: ``ServerError``, ``RateLimitError`` and
``Api2TradeConnectionError`` are transient (the client already retried them);
``AuthenticationError``, ``AccountNotFoundError`` and ``ConfigurationError`` need a person;
``BrokerRejectionError`` says what the trade server answered. Messages never contain secrets:
they are built from the endpoint name and the server's message, never from headers or URLs.
"""

from __future__ import annotations


class Api2TradeError(Exception):
    """Base of every error the client raises.

    ``status_code`` is the HTTP status when there was a response; ``endpoint`` names the bridge
    endpoint (``/AccountSummary``) when the error belongs to one request.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, endpoint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.endpoint = endpoint

    def __str__(self) -> str:
        return f"{self.endpoint}: {self.message}" if self.endpoint else self.message


class ConfigurationError(Api2TradeError):
    """The client cannot be built: a credential or setting is missing or invalid."""


class AuthenticationError(Api2TradeError):
    """HTTP 401: the API key or Pro credentials were refused."""


class AccountNotFoundError(Api2TradeError):
    """HTTP 404: the account UUID is not registered on the bridge."""


class RateLimitError(Api2TradeError):
    """HTTP 429. ``retry_after`` is the server's ``Retry-After`` in seconds, when it sent one."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = 429,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, endpoint=endpoint)
        self.retry_after = retry_after


class ServerError(Api2TradeError):
    """HTTP 5xx from the bridge (already retried with back-off)."""


class Api2TradeConnectionError(Api2TradeError):
    """Timeout, DNS failure, refused or reset connection (already retried with back-off)."""


class ResponseFormatError(Api2TradeError):
    """A response could not be understood: bad JSON, or a required field missing or malformed."""


class BrokerRejectionError(Api2TradeError):
    """HTTP 200 with a trade return code that is not a success.

    ``is_retryable`` is True for requotes and busy servers. ``outcome_unknown`` is True when the
    trade server could not say whether the order was executed (10011, 10012, 10031) and the
    client could not find out by reading positions.
    """

    def __init__(
        self,
        message: str,
        *,
        retcode: int,
        is_retryable: bool,
        outcome_unknown: bool = False,
        ticket: int | None = None,
        status_code: int | None = 200,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, endpoint=endpoint)
        self.retcode = retcode
        self.is_retryable = is_retryable
        self.outcome_unknown = outcome_unknown
        self.ticket = ticket


__all__ = [
    "AccountNotFoundError",
    "Api2TradeConnectionError",
    "Api2TradeError",
    "AuthenticationError",
    "BrokerRejectionError",
    "ConfigurationError",
    "RateLimitError",
    "ResponseFormatError",
    "ServerError",
]
