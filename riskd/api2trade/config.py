"""Client settings: constructor arguments first, then ``API2TRADE_*`` environment variables."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskd.api2trade.exceptions import ConfigurationError

DEFAULT_BASE_URL = "https://api.metatraderapi.dev"
DEFAULT_WS_URL = "wss://api.metatraderapi.dev/stream"

ENV_PREFIX = "API2TRADE_"


class ClientSettings(BaseSettings):
    """Everything the client needs to reach the bridge.

    Secrets are ``SecretStr``: their repr and str are masked, so a settings object can be
    logged or shown in a traceback without leaking the key.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    api_key: SecretStr | None = None
    pro_username: str | None = None
    pro_password: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    ws_url: str | None = None
    timeout: float = Field(default=10.0, gt=0, description="seconds per HTTP attempt")
    max_retries: int = Field(default=3, ge=0, description="retries after the first attempt")
    max_retry_after: float = Field(
        default=60.0, ge=0, description="longest Retry-After (s) waited before giving up"
    )
    stream_auth: Literal["header", "query"] = Field(
        default="header", description="'query' sends the key as ?api_key= for servers that need it"
    )

    @property
    def auth_mode(self) -> Literal["api_key", "basic"]:
        return "basic" if self.pro_username is not None else "api_key"

    @property
    def stream_url(self) -> str:
        """The WebSocket URL: ``ws_url``, or derived from a non-default ``base_url``."""
        if self.ws_url:
            return self.ws_url
        if self.base_url.rstrip("/") == DEFAULT_BASE_URL:
            return DEFAULT_WS_URL
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/stream", "", ""))

    def check_credentials(self) -> None:
        """Raise ``ConfigurationError`` naming the variable to set when a credential is missing."""
        if self.pro_username is not None or self.pro_password is not None:
            if not self.pro_username:
                raise ConfigurationError(
                    "Pro plan login needs a username: pass pro_username= or set "
                    f"{ENV_PREFIX}PRO_USERNAME"
                )
            if self.pro_password is None or not self.pro_password.get_secret_value():
                raise ConfigurationError(
                    "Pro plan login needs a password: pass pro_password= or set "
                    f"{ENV_PREFIX}PRO_PASSWORD"
                )
            return
        if self.api_key is None or not self.api_key.get_secret_value():
            raise ConfigurationError(
                f"no API key: pass api_key= or set {ENV_PREFIX}API_KEY "
                f"(Pro plans: {ENV_PREFIX}PRO_USERNAME and {ENV_PREFIX}PRO_PASSWORD)"
            )


def load_settings(**overrides: Any) -> ClientSettings:
    """Build and check settings; ``None`` overrides fall through to the environment.

    Raises ``ConfigurationError`` with one line per bad setting. Input values are never echoed
    (pydantic's own message would print them, and one of them may be a key).
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = ClientSettings(**given)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(p) for p in err["loc"])
            problems.append(f"{ENV_PREFIX}{field.upper()} ({field}=): {err['msg']}")
        raise ConfigurationError("invalid client settings: " + "; ".join(problems)) from None
    settings.check_credentials()
    return settings
