"""The daemon's configuration: a YAML file, ``RISKD_*`` overrides, secrets from the environment.

``riskd run --config riskd.yaml`` calls ``load_config``; the daemon gets a ``Config`` with
every account's rules already compiled, or a ``ConfigError`` listing every problem at once,
one line each, never a traceback:

- problems in the config file as ``riskd.yaml:12: accounts[0].initial_balance: ...``
  (``riskd.yamlfile`` keeps the line of every key);
- problems in variables as ``RISKD_POLLING__SUMMARY_INTERVAL: ...`` (the value of a secret is
  never echoed);
- problems in rule files as their own ``rules/x.yaml:7: ...`` lines (``riskd.engine.loader``).

Where each setting comes from, highest first:

1. ``RISKD_*`` variables: ``RISKD_DRY_RUN=true``; nested with ``__``:
   ``RISKD_POLLING__SUMMARY_INTERVAL=2s``. A whole section or list can be given as JSON
   (``RISKD_ACCOUNTS='[...]'``). Names are matched case-insensitively, and a ``RISKD_*`` name
   that is not a setting is an error, not silently ignored (``RISKD_DRYRUN=true`` must not
   leave a daemon trading).
2. The bridge client's own ``API2TRADE_*`` variables (``API2TRADE_API_KEY``,
   ``API2TRADE_BASE_URL``, ``API2TRADE_TIMEOUT`` in seconds, ...), for the ``bridge:`` section.
3. Secrets files: ``API2TRADE_API_KEY``, ``API2TRADE_PRO_USERNAME`` and
   ``API2TRADE_PRO_PASSWORD`` in the directory named by ``RISKD_SECRETS_DIR`` (a Kubernetes
   secret mount, say), then in systemd's ``$CREDENTIALS_DIRECTORY`` (``LoadCredential=``).
   File names match case-insensitively; one trailing newline is stripped.
4. The YAML file. Secrets are refused there: a key such as ``api_key`` is an error that says
   which variable or secrets file to use instead.
5. Defaults (the bridge's come from ``ClientSettings``, so they live in one place).

Secrets are ``SecretStr`` from the moment they are read; neither ``Config`` nor
``ConfigError`` ever contains their text.

Alert URLs (``alerts.urls``) are secrets too: an apprise URL carries a bot token or a mail
password. They come from ``RISKD_ALERTS__URLS`` (JSON, or one ``[tags=]URL`` per line) or a
secrets file of that name (same formats), never from the YAML; the YAML may instead name an
apprise config file (``alerts.config_file``, YAML with tags) that only riskd can read.

The merge is done here rather than by pydantic-settings' built-in sources on purpose: the
environment must be injectable (tests pass a dict), every problem must name the file line or
the variable it came from, unknown ``RISKD_*`` names must be caught, and secrets files are
named after the client's variables, not after fields. ``RiskdSettings`` is the
pydantic-settings model that validates the merged values.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import logging
import math
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from riskd.api2trade.config import ENV_PREFIX as API2TRADE_PREFIX
from riskd.api2trade.config import ClientSettings
from riskd.api2trade.exceptions import ConfigurationError
from riskd.engine.loader import RuleFileError, load_account_rules
from riskd.engine.rules import Rule
from riskd.engine.units import parse_duration, parse_zone
from riskd.shard import ENV_NAMES as SHARD_ENV_NAMES
from riskd.shard import Shard, ShardError, shard_from_env
from riskd.yamlfile import (
    Loc,
    YamlDocument,
    YamlFileError,
    default_describe_loc,
    is_secret_name,
    load_yaml,
)

__all__ = [
    "ALERT_URLS_ENV",
    "ENV_PREFIX",
    "SECRETS_DIR_ENV",
    "SECRET_FILES",
    "AccountConfig",
    "AccountSettings",
    "AlertUrlSettings",
    "AlertsSettings",
    "BridgeSettings",
    "Config",
    "ConfigError",
    "EnforcementSettings",
    "PollingSettings",
    "RiskdSettings",
    "StateSettings",
    "load_config",
]

ENV_PREFIX = "RISKD_"
"""Prefix of the variables that override the config file."""

SECRETS_DIR_ENV = "RISKD_SECRETS_DIR"
"""The variable naming an explicit secrets directory (searched before systemd's)."""

CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY"
"""Set by systemd for a unit with ``LoadCredential=`` / ``SetCredential=``."""

SECRET_FILES: Mapping[str, str] = {
    f"{API2TRADE_PREFIX}API_KEY": "api_key",
    f"{API2TRADE_PREFIX}PRO_USERNAME": "pro_username",
    f"{API2TRADE_PREFIX}PRO_PASSWORD": "pro_password",
}
"""Secrets file name -> ``bridge`` field it sets."""

ALERT_URLS_ENV = f"{ENV_PREFIX}ALERTS__URLS"
"""The variable, and the secrets file name, holding the apprise URLs of ``alerts.urls``."""

_ALERT_URLS_LOC = ("alerts", "urls")

# ``RISKD_*`` names read by riskd itself that are not config settings. Anything else with the
# prefix must be a setting: add here a variable another part of riskd reads.
# Read by ``riskd.shard`` (one replica's place among many), not settings of the file.
_RESERVED_ENV = frozenset({SECRETS_DIR_ENV, *SHARD_ENV_NAMES})

# ClientSettings takes these in seconds as plain numbers (``API2TRADE_TIMEOUT=10``); the config
# file writes durations with a unit. A bare number from those variables means seconds.
_SECONDS_FIELDS = frozenset({"timeout", "max_retry_after"})

_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_NUMBER = re.compile(r"^\s*\d+(?:\.\d*)?\s*$")


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` holds one line per problem.

    Lines are ``file:line: what is wrong`` for the config and rule files, ``VARIABLE: what is
    wrong`` for the environment. Print them as they are; no line contains a secret.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# --- value types -------------------------------------------------------------------------------


def _seconds(raw: object) -> float:
    """A duration (``5s``, ``500ms``, ``2m``; ``timedelta`` from Python) in seconds, >= 0."""
    if isinstance(raw, timedelta):
        value = raw.total_seconds()
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    return parse_duration(raw).total_seconds()


def _positive_seconds(raw: object) -> float:
    value = _seconds(raw)
    if value <= 0:
        raise ValueError("must be longer than 0, e.g. 5s")
    return value


Seconds = Annotated[float, BeforeValidator(_seconds)]
"""A non-negative duration written with a unit, held as float seconds."""

PositiveSeconds = Annotated[float, BeforeValidator(_positive_seconds)]
"""A duration longer than zero, held as float seconds."""


def _positive_amount(raw: object) -> object:
    # bool is an int to Python; ``initial_balance: true`` is a mistake, not 1.
    if isinstance(raw, bool):
        raise ValueError("expected a number, found true/false")
    return raw


def _check_positive(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a number greater than 0")
    return value


PositiveAmount = Annotated[
    float, BeforeValidator(_positive_amount), AfterValidator(_check_positive)
]


def _check_zone(name: str) -> str:
    parse_zone(name)  # raises ValueError naming the zone and what to write instead
    return name.strip()


def _check_account_id(raw: object) -> str:
    # A number here is nearly always the MetaTrader login pasted instead of the bridge's id.
    if not isinstance(raw, str) or not _UUID.match(raw.strip()):
        raise ValueError(
            "expected the bridge account UUID (like 3f9a6c1e-2b47-4d8a-9e15-7c0d2a4b8f61), "
            "as /RegisterAccount returned it; the MetaTrader login number is not the id"
        )
    return raw.strip()


def _empty_if_none(raw: object) -> object:
    # A section whose keys are all commented out (``polling:`` alone) loads as None: defaults.
    return {} if raw is None else raw


def _one_or_many(raw: object) -> object:
    # ``rules: rules/ftmo-2step.yaml`` (one file, no brackets) is what people write first.
    return [raw] if isinstance(raw, str) else raw


def _check_url(schemes: tuple[str, ...]) -> typing.Callable[[str | None], str | None]:
    def check(value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        # The URL is not echoed: it may carry a user:password@ part.
        if not value.lower().startswith(tuple(f"{s}://" for s in schemes)):
            raise ValueError(f"expected a URL starting with {' or '.join(schemes)}://")
        return value

    return check


# --- the schema ----------------------------------------------------------------------------------


class BridgeSettings(BaseModel):
    """``bridge:``: how to reach API2Trade; ``None`` means the client's default.

    ``api_key``, ``pro_username`` and ``pro_password`` are only ever set from the environment
    or secrets files (see the module docstring); the config file may not hold them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: Annotated[str | None, AfterValidator(_check_url(("http", "https")))] = None
    ws_url: Annotated[str | None, AfterValidator(_check_url(("ws", "wss")))] = None
    timeout: PositiveSeconds | None = None
    max_retries: int | None = Field(default=None, ge=0)
    max_retry_after: Seconds | None = None
    stream_auth: Literal["header", "query"] | None = None
    pro_username: str | None = None
    api_key: SecretStr | None = None
    pro_password: SecretStr | None = None


class StateSettings(BaseModel):
    """``state:``: where baselines, latches and the close_all journal persist (SQLite)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(default="riskd-state.sqlite", min_length=1)


class PollingSettings(BaseModel):
    """``polling:``: the poll jobs of every account; durations are float seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary_interval: PositiveSeconds = 5.0
    positions_interval: PositiveSeconds = 10.0
    start_jitter: Seconds = 2.0
    job_timeout: PositiveSeconds = 8.0
    max_concurrent_requests: int = Field(default=16, ge=1)


class HttpSettings(BaseModel):
    """``http:``: the /metrics /livez /readyz /status server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    listen: str = "127.0.0.1:9108"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        from riskd.web import WebSettings

        WebSettings.parse(value)  # raises ValueError with a readable message
        return value


class StreamSettings(BaseModel):
    """``stream:``: the tick stream that estimates equity between polls."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


class EnforcementSettings(BaseModel):
    """``enforcement:``: how close_all runs; durations are float seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confirm_breach: bool = True
    close_concurrency: int = Field(default=4, ge=1)
    flat_timeout: PositiveSeconds = 60.0
    market_closed_retry: PositiveSeconds = 30.0
    reminder_interval: PositiveSeconds = 300.0


_APPRISE_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)
_TAG = re.compile(r"^[\w.-]+$")
# ``telegram,email=tgram://...``: apprise's own text format. The tags part cannot hold ':' or
# '/', so a URL whose query has '=' is never mistaken for tags.
_TAGGED_URL = re.compile(
    r"^(?:(?P<tags>[\w.,\s-]+?)\s*=\s*)?(?P<url>[a-z][a-z0-9+.-]*://\S+)$", re.IGNORECASE
)


def _tag_list(raw: object) -> object:
    # ``tags: email`` and ``tags: "telegram, email"`` are one and two tags.
    if isinstance(raw, str):
        return [t for t in re.split(r"[\s,]+", raw) if t]
    return raw


def _check_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    for tag in tags:
        if not _TAG.match(tag):
            raise ValueError(f"'{tag}' is not a tag: use letters, digits, '_', '-' and '.'")
    return tuple(dict.fromkeys(tags))


Tags = Annotated[tuple[str, ...], BeforeValidator(_tag_list), AfterValidator(_check_tags)]


def _tagged_url(raw: object) -> object:
    # A plain string item is ``[tags=]URL``.
    if isinstance(raw, str):
        match = _TAGGED_URL.match(raw.strip())
        if match is None:
            # Never echo the text: it is a URL with a token in it.
            raise ValueError("expected an apprise URL such as tgram://... , optionally tags=URL")
        tags = match.group("tags")
        return {"url": match.group("url"), "tags": _tag_list(tags or "")}
    return raw


def _check_apprise_url(value: SecretStr) -> SecretStr:
    if not _APPRISE_URL.match(value.get_secret_value().strip()):
        raise ValueError("expected an apprise URL such as tgram://... or mailtos://...")
    return SecretStr(value.get_secret_value().strip())


def parse_alert_urls(text: str) -> list[object]:
    """``RISKD_ALERTS__URLS`` or its secrets file: a JSON list, or one ``[tags=]URL`` a line.

    Blank lines and ``#`` comments are skipped. Raises ``ValueError`` naming the line, never
    its text.
    """
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected JSON ({exc.msg} at character {exc.pos + 1})") from None
        if not isinstance(parsed, list):
            raise ValueError("expected a JSON list of URLs")
        return parsed
    out: list[object] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if _TAGGED_URL.match(line) is None:
            raise ValueError(
                f"line {number} is not an apprise URL (write one [tags=]URL per line, "
                "e.g. telegram=tgram://...)"
            )
        out.append(line)
    return out


class AlertUrlSettings(BaseModel):
    """One apprise URL with the tags that routes select it by.

    ``url`` is a secret (it holds tokens and passwords): it is only ever set from
    ``RISKD_ALERTS__URLS`` or its secrets file, and never shown.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[SecretStr, AfterValidator(_check_apprise_url)]
    tags: Tags = ()


class AlertsSettings(BaseModel):
    """``alerts:``: apprise delivery of alerts; durations are float seconds.

    Alerts always go to the log. They are also delivered through apprise when ``urls`` (from
    the environment or a secrets file only) or ``config_file`` name at least one service.
    ``routes`` maps a severity to the tags it is sent to; a severity not listed goes to every
    service, an empty list to none (log only). ``config_file`` is absolute once loaded.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: Annotated[
        list[Annotated[AlertUrlSettings, BeforeValidator(_tagged_url)]],
        BeforeValidator(_empty_if_none),
    ] = Field(default_factory=list)
    config_file: str | None = Field(default=None, min_length=1)
    routes: Annotated[
        dict[Literal["info", "warning", "critical"], Tags], BeforeValidator(_empty_if_none)
    ] = Field(default_factory=dict)
    timeout: PositiveSeconds = 10.0
    retries: int = Field(default=3, ge=0, le=20)
    retry_backoff: PositiveSeconds = 2.0
    repeat_interval: Seconds = 1800.0
    queue_size: int = Field(default=1000, ge=1)
    drain_timeout: Seconds = 10.0

    @property
    def enabled(self) -> bool:
        """True when apprise has somewhere to deliver to."""
        return bool(self.urls) or self.config_file is not None


class AccountSettings(BaseModel):
    """One item of ``accounts:`` as written; ``load_config`` turns it into ``AccountConfig``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, BeforeValidator(_check_account_id)]
    name: str | None = Field(default=None, min_length=1)
    initial_balance: PositiveAmount
    rules: Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_one_or_many)]
    timezone: Annotated[str, AfterValidator(_check_zone)] = "UTC"
    contract_sizes: Annotated[
        dict[Annotated[str, Field(min_length=1)], PositiveAmount],
        BeforeValidator(_empty_if_none),
    ] = Field(default_factory=dict)
    dry_run: bool | None = None

    @field_validator("rules")
    @classmethod
    def _some_rules(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("list at least one rule file, e.g. [rules/ftmo-2step.yaml]")
        return value


class RiskdSettings(BaseSettings):
    """The whole config as validated: the YAML file merged with the environment.

    ``env_prefix`` and ``env_nested_delimiter`` name the override variables
    (``RISKD_POLLING__SUMMARY_INTERVAL``); ``load_config`` reads them with its own sources
    and passes the merged values in, so constructing this class reads nothing by itself.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    bridge: Annotated[BridgeSettings, BeforeValidator(_empty_if_none)] = Field(
        default_factory=BridgeSettings
    )
    state: Annotated[StateSettings, BeforeValidator(_empty_if_none)] = Field(
        default_factory=StateSettings
    )
    dry_run: bool = False
    polling: Annotated[PollingSettings, BeforeValidator(_empty_if_none)] = Field(
        default_factory=PollingSettings
    )
    enforcement: Annotated[EnforcementSettings, BeforeValidator(_empty_if_none)] = Field(
        default_factory=EnforcementSettings
    )
    stream: Annotated[StreamSettings, BeforeValidator(_empty_if_none)] = Field(
        default_factory=StreamSettings
    )
    http: Annotated[HttpSettings, BeforeValidator(_empty_if_none)] = Field(
        default_factory=HttpSettings
    )
    alerts: Annotated[AlertsSettings, BeforeValidator(_empty_if_none)] = Field(
        default_factory=AlertsSettings
    )
    accounts: list[AccountSettings]

    @field_validator("accounts")
    @classmethod
    def _some_accounts(cls, value: list[AccountSettings]) -> list[AccountSettings]:
        if not value:
            raise ValueError("list at least one account to watch")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values passed in: ``load_config`` has merged every source already."""
        return (init_settings,)


# --- what the daemon gets ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """One watched account, ready to run.

    ``rules`` are compiled from ``rule_files`` (in order, names unique across them);
    ``effective_dry_run`` is true when the global ``dry_run`` or the account's is true: the
    global switch puts every account in dry run, an account can only add itself.
    """

    id: str
    name: str
    initial_balance: float
    rule_files: list[Path]
    rules: list[Rule] = field(repr=False)
    timezone: tzinfo
    contract_sizes: Mapping[str, float]
    dry_run: bool | None
    effective_dry_run: bool


@dataclass(frozen=True, slots=True)
class Config:
    """A loaded, checked configuration (see ``load_config``).

    ``path`` is the config file; ``state_path`` is absolute. ``polling``, ``enforcement`` and
    ``alerts`` hold durations as float seconds; ``alerts.config_file`` is absolute. ``bridge``
    is the merged ``bridge:`` section, credentials included (as ``SecretStr``); use
    ``client_settings()`` to build the client.
    """

    path: Path
    state_path: Path
    dry_run: bool
    polling: PollingSettings
    enforcement: EnforcementSettings
    accounts: list[AccountConfig]
    stream: StreamSettings
    http: HttpSettings
    bridge: BridgeSettings
    secrets_dirs: tuple[Path, ...] = ()
    alerts: AlertsSettings = field(default_factory=AlertsSettings)
    shard: Shard = field(default_factory=Shard)
    """This replica's shard (``RISKD_SHARD_*``): it watches ``owned_accounts`` only."""

    @property
    def owned_accounts(self) -> list[AccountConfig]:
        """The accounts this replica watches (all of them with one replica)."""
        return [a for a in self.accounts if self.shard.owns(a.id)]

    def client_settings(self, **overrides: Any) -> ClientSettings:
        """The bridge client's settings: ``bridge:`` merged with ``API2TRADE_*`` and secrets.

        ``overrides`` replace fields (``riskd demo`` points the client at its simulator).
        Raises ``ConfigError`` naming the variable or secrets file to set when a credential
        is missing (``load_config`` already checked that unless ``require_credentials=False``).
        """
        settings = _client_settings(self.bridge, overrides)
        problem = _credential_problem(settings, self.secrets_dirs, ())
        if problem is not None:
            raise ConfigError([problem])
        return settings

    def account(self, account_id: str) -> AccountConfig:
        """The account with ``account_id``; ``KeyError`` if none."""
        for account in self.accounts:
            if account.id == account_id:
                return account
        raise KeyError(account_id)


def load_config(
    path: str | Path,
    env: Mapping[str, str] | None = None,
    *,
    require_credentials: bool = True,
) -> Config:
    """Load, validate and resolve the config file at ``path`` with its overrides.

    ``env`` defaults to ``os.environ``; pass a dict for a hermetic load. Every account's rule
    files are loaded and compiled. With ``require_credentials=False`` (``riskd demo``,
    ``riskd check-config``) a missing bridge credential is not a problem.

    Raises ``ConfigError`` with every problem found (see the module docstring).
    """
    return _Loader(Path(path), os.environ if env is None else env).load(require_credentials)


# --- sources -------------------------------------------------------------------------------------


@dataclass
class _Layer:
    """Values from one source, and which variable or file set each one."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[Loc, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def set(self, loc: tuple[str, ...], value: Any, origin: str) -> None:
        target = self.data
        for part in loc[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[loc[-1]] = value
        self.origins[loc] = origin

    def origin_of(self, loc: Loc) -> tuple[Loc, str] | None:
        """The (location, name) of the longest origin that ``loc`` lies in, if any."""
        best: tuple[Loc, str] | None = None
        for origin_loc, name in self.origins.items():
            if loc[: len(origin_loc)] == origin_loc and (
                best is None or len(origin_loc) > len(best[0])
            ):
                best = (origin_loc, name)
        return best


def _riskd_env(env: Mapping[str, str]) -> _Layer:
    """``RISKD_*`` variables as nested settings; unknown names are problems."""
    layer = _Layer()
    prefix = str(RiskdSettings.model_config.get("env_prefix", ENV_PREFIX))
    delimiter = str(RiskdSettings.model_config.get("env_nested_delimiter", "__"))
    found: list[tuple[tuple[str, ...], Any, str]] = []
    seen: dict[tuple[str, ...], str] = {}
    for name in sorted(env):
        if not name.upper().startswith(prefix) or name.upper() in _RESERVED_ENV:
            continue
        value = env[name]
        if value == "":  # ``VAR=`` placeholders (compose files, unit templates) mean unset
            continue
        parts = name[len(prefix) :].lower().split(delimiter)
        resolved = _resolve_env_name(parts, prefix, delimiter)
        if isinstance(resolved, str):
            layer.problems.append(f"{name}: {resolved}")
            continue
        loc, complex_value = resolved
        if loc in seen:
            layer.problems.append(f"{name}: sets the same setting as {seen[loc]}; keep one")
            continue
        seen[loc] = name
        if loc == _ALERT_URLS_LOC:
            # Also one ``[tags=]URL`` per line, as in the secrets file.
            try:
                found.append((loc, parse_alert_urls(value), name))
            except ValueError as exc:
                layer.problems.append(f"{name}: {exc}")
            continue
        if complex_value:
            try:
                parsed: Any = json.loads(value)
            except json.JSONDecodeError as exc:
                # exc.msg and the position only: the value may hold a secret.
                layer.problems.append(
                    f"{name}: expected JSON for this section or list "
                    f"({exc.msg} at character {exc.pos + 1})"
                )
                continue
            found.append((loc, parsed, name))
        else:
            found.append((loc, value, name))
    # A section given as JSON first, its single settings (``RISKD_POLLING__X``) on top.
    for loc, value, name in sorted(found, key=lambda item: len(item[0])):
        layer.set(loc, value, name)
    return layer


def _resolve_env_name(
    parts: list[str], prefix: str, delimiter: str
) -> tuple[tuple[str, ...], bool] | str:
    """The setting a ``RISKD_*`` name addresses and whether its value is JSON, or a problem."""
    model: type[BaseModel] = RiskdSettings
    loc: tuple[str, ...] = ()
    for index, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields:
            names = [f for f in fields if not is_secret_name(f)]
            close = difflib.get_close_matches(part, names, n=1)
            hint = ""
            if close:
                suggestion = delimiter.join((*loc, close[0])).upper()
                hint = f" (did you mean {prefix}{suggestion}?)"
            where = f"in {'.'.join(loc)}" if loc else "in the config"
            return f"no setting '{part}' {where}{hint}"
        loc = (*loc, part)
        annotation = fields[part].annotation
        section = _section_model(annotation)
        if index == len(parts) - 1:
            return loc, section is not None or typing.get_origin(annotation) in (list, dict)
        if section is None:
            return (
                f"'{'.'.join(loc)}' has no settings inside it to set one by one; "
                f"set {prefix}{delimiter.join(loc).upper()} to its whole value as JSON"
            )
        model = section
    return "no setting named"  # unreachable: parts is never empty


def _api2trade_env(env: Mapping[str, str]) -> _Layer:
    """The client's ``API2TRADE_*`` variables as ``bridge:`` settings."""
    layer = _Layer()
    # Names match case-insensitively, as in ClientSettings; the later (smaller) name wins, so
    # API2TRADE_API_KEY beats api2trade_api_key when both are set.
    by_upper = {name.upper(): name for name in sorted(env, reverse=True)}
    for field_name in ClientSettings.model_fields:
        if field_name not in BridgeSettings.model_fields:
            continue
        name = by_upper.get(f"{API2TRADE_PREFIX}{field_name.upper()}")
        if name is None or env[name] == "":
            continue
        value = env[name]
        if field_name in _SECONDS_FIELDS and _NUMBER.match(value):
            value = f"{value.strip()}s"
        layer.set(("bridge", field_name), value, name)
    return layer


def _secrets_dirs(env: Mapping[str, str]) -> tuple[list[Path], list[str]]:
    """The secrets directories to search, in order, and problems with them."""
    dirs: list[Path] = []
    problems: list[str] = []
    for var in (SECRETS_DIR_ENV, CREDENTIALS_DIRECTORY_ENV):
        value = env.get(var, "")
        if not value:
            continue
        path = Path(value).expanduser()
        if path.is_dir():
            dirs.append(path)
        else:
            problems.append(f"{var}: {path} is not a directory")
    return dirs, problems


@dataclass
class _Secrets:
    layer: _Layer
    dirs: list[Path]
    empty: list[Path]


def _read_secrets(env: Mapping[str, str]) -> _Secrets:
    """Credentials from files named like their variables in the secrets directories."""
    layer = _Layer()
    dirs, layer.problems = _secrets_dirs(env)
    empty: list[Path] = []
    wanted = {name.upper(): name for name in (*SECRET_FILES, ALERT_URLS_ENV)}
    for directory in dirs:
        try:
            entries = sorted(os.listdir(directory))
        except OSError as exc:
            layer.problems.append(f"{directory}: cannot read: {exc.strerror or exc}")
            continue
        # Exact names first, so API2TRADE_API_KEY beats api2trade_api_key in one directory.
        for entry in sorted(entries, key=lambda e: e not in wanted.values()):
            # Kubernetes secret mounts hold ``..data`` and timestamped directories: skip them.
            if entry.startswith(".") or entry.upper() not in wanted:
                continue
            var = wanted[entry.upper()]
            loc = _ALERT_URLS_LOC if var == ALERT_URLS_ENV else ("bridge", SECRET_FILES[var])
            if loc in layer.origins:  # an earlier directory or an exact-case name won
                continue
            path = directory / entry
            if not path.is_file():
                continue
            try:
                raw = path.read_bytes()
            except OSError as exc:
                layer.problems.append(f"{path}: cannot read: {exc.strerror or exc}")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                layer.problems.append(f"{path}: the secret is not UTF-8 text")
                continue
            # ``echo key > file`` and most editors end the file with a newline.
            text = text.removesuffix("\n").removesuffix("\r")
            if not text:
                empty.append(path)
                continue
            if var == ALERT_URLS_ENV:
                try:
                    layer.set(loc, parse_alert_urls(text), f"secrets file {path}")
                except ValueError as exc:
                    layer.problems.append(f"secrets file {path}: {exc}")
                continue
            layer.set(loc, text, f"secrets file {path}")
    return _Secrets(layer, dirs, empty)


def _merge(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    """``high`` over ``low``, mappings merged key by key, anything else replaced."""
    out = dict(low)
    for key, value in high.items():
        below = out.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            out[key] = _merge(below, value)
        else:
            out[key] = value
    return out


# --- loading -------------------------------------------------------------------------------------


class _Loader:
    """One ``load_config`` call: sources, validation, rule files, and the problems of each."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.base = path.parent
        self.env = env
        self.doc: YamlDocument | None = None
        self.file_problems: list[tuple[int, str]] = []  # the config file's, sorted by line
        self.other_problems: list[str] = []  # variables and secrets files
        self.rule_problems: list[str] = []
        self.layers: tuple[_Layer, ...] = ()  # highest priority first

    def load(self, require_credentials: bool) -> Config:
        riskd_env = _riskd_env(self.env)
        api_env = _api2trade_env(self.env)
        secrets = _read_secrets(self.env)
        self.layers = (riskd_env, api_env, secrets.layer)
        for layer in self.layers:
            self.other_problems.extend(layer.problems)

        yaml_data = self._read_yaml()
        merged = yaml_data
        for layer in reversed(self.layers):
            merged = _merge(merged, layer.data)

        settings: RiskdSettings | None = None
        try:
            settings = RiskdSettings(**merged)
        except ValidationError as exc:
            self._validation_problems(exc)
        accounts_rules = self._check_accounts(merged.get("accounts"))

        # With problems elsewhere, the bridge and state sections are still checked on their
        # own, so a missing credential or state directory is not left for the next attempt.
        bridge = settings.bridge if settings else _quietly(BridgeSettings, merged.get("bridge"))
        state = settings.state if settings else _quietly(StateSettings, merged.get("state"))
        client = self._client(bridge) if bridge is not None else None
        if client is not None and require_credentials:
            problem = _credential_problem(client, tuple(secrets.dirs), secrets.empty)
            if problem is not None:
                self.other_problems.append(problem)
        state_path = self._state_path(state) if state is not None else None
        alerts = self._alerts(settings.alerts) if settings is not None else None
        shard: Shard | None = None
        try:
            shard = shard_from_env(self.env)
        except ShardError as exc:
            self.other_problems.append(str(exc))

        problems = [text for _, text in sorted(self.file_problems, key=lambda p: p[0])]
        # Grouped by variable (each line starts with its name), in a stable order.
        problems += sorted(dict.fromkeys(self.other_problems))
        problems += self.rule_problems
        if problems or settings is None or state_path is None or alerts is None or shard is None:
            raise ConfigError(list(dict.fromkeys(problems)) or ["the config is not valid"])
        return Config(
            path=self.path,
            state_path=state_path,
            dry_run=settings.dry_run,
            polling=settings.polling,
            stream=settings.stream,
            http=settings.http,
            enforcement=settings.enforcement,
            accounts=[
                self._account(item, accounts_rules[index], settings.dry_run)
                for index, item in enumerate(settings.accounts)
            ],
            bridge=settings.bridge,
            secrets_dirs=tuple(secrets.dirs),
            alerts=alerts,
            shard=shard,
        )

    # -- the YAML file

    def _read_yaml(self) -> dict[str, Any]:
        try:
            doc = load_yaml(self.path)
        except YamlFileError as exc:
            # A file that cannot be read or parsed has no lines to validate; stop here, with
            # the variables' problems too.
            raise ConfigError([*exc.problems, *self.other_problems]) from None
        self.doc = doc
        if doc.data is None:  # empty: everything from the environment, or "missing accounts"
            return {}
        if not isinstance(doc.data, dict):
            raise ConfigError(
                [
                    f"{doc.path}:{doc.line_of(())}: the config file must be a mapping of "
                    "settings (bridge:, accounts:, ...)",
                    *self.other_problems,
                ]
            )
        data: dict[str, Any] = copy.deepcopy(doc.data)
        for loc in list(_secret_keys(data, ())):
            self._file_problem(
                loc, _secret_in_file_message(str(loc[-1])), describe=loc[:-1], in_file=True
            )
            _delete(data, loc)
        alerts = data.get("alerts")
        if isinstance(alerts, dict) and "urls" in alerts:
            self._file_problem(
                _ALERT_URLS_LOC, _ALERT_URLS_IN_FILE, describe=_ALERT_URLS_LOC[:-1], in_file=True
            )
            del alerts["urls"]
        return data

    def _file_problem(
        self, loc: Loc, message: str, *, describe: Loc | None = None, in_file: bool = False
    ) -> None:
        """A problem at ``loc``: in the config file, or in the variable that set ``loc``.

        ``in_file`` pins it to the file (a secret written there, whatever the environment
        sets for the same setting).
        """
        where = default_describe_loc(loc if describe is None else describe)
        text = f"{where}: {message}" if where else message
        origin = None if in_file else self._origin(loc)
        if origin is not None:
            self.other_problems.append(f"{origin[1]}: {text}")
        elif self.doc is not None:
            line = self.doc.line_of(loc)
            self.file_problems.append((line, f"{self.doc.path}:{line}: {text}"))

    def _origin(self, loc: Loc) -> tuple[Loc, str] | None:
        for layer in self.layers:
            origin = layer.origin_of(loc)
            if origin is not None:
                return origin
        return None

    # -- validation

    def _validation_problems(self, exc: ValidationError) -> None:
        from_file: list[ErrorDetails] = []
        for err in exc.errors(include_url=False):
            loc: Loc = tuple(err["loc"])
            origin = self._origin(loc)
            if origin is None:
                from_file.append(err)
            else:
                self.other_problems.append(_variable_problem(origin, loc, err))
        if from_file and self.doc is not None:
            subset = ValidationError.from_exception_data(
                exc.title, [_init_details(err) for err in from_file]
            )
            for text in self.doc.problems(subset, known_fields=_known_fields):
                self.file_problems.append((_line_of(text, self.doc.path), text))

    def _client(self, bridge: BridgeSettings) -> ClientSettings | None:
        try:
            return _client_settings(bridge, {})
        except ValidationError as exc:
            # BridgeSettings checks what ClientSettings checks, so this is a drift between
            # the two models; say which setting rather than crash.
            for err in exc.errors(include_url=False):
                loc = ("bridge", *err["loc"])
                self._file_problem(loc, _plain_message(err))
            return None

    # -- accounts and their rule files, checked on the raw data so that they are reported
    #    together with every schema problem

    def _check_accounts(self, raw: object) -> dict[int, list[Rule]]:
        compiled: dict[int, list[Rule]] = {}
        if not isinstance(raw, list):
            return compiled
        first_id: dict[str, int] = {}
        for index, item in enumerate(raw):
            if not isinstance(item, dict):
                continue
            account_id = item.get("id")
            if isinstance(account_id, str) and account_id.strip():
                key = account_id.strip().lower()  # UUIDs are case-insensitive
                if key in first_id:
                    first = first_id[key]
                    self._file_problem(
                        ("accounts", index, "id"),
                        f"account id '{account_id.strip()}' is already used by "
                        f"{self._describe_account(first)}; each account is listed once",
                    )
                else:
                    first_id[key] = index
            rules = self._load_rules(index, _one_or_many(item.get("rules")))
            if rules is not None:
                compiled[index] = rules
        return compiled

    def _describe_account(self, index: int) -> str:
        loc = ("accounts", index)
        if self._origin(loc) is None and self.doc is not None:
            return f"accounts[{index}] (line {self.doc.line_of(loc)})"
        return f"accounts[{index}]"

    def _load_rules(self, index: int, raw: object) -> list[Rule] | None:
        if not isinstance(raw, list) or not raw:
            return None
        paths: list[Path] = []
        missing = False
        for number, entry in enumerate(raw):
            if not isinstance(entry, str) or not entry.strip():
                missing = True  # the schema reports it
                continue
            path = self._resolve(entry)
            if not path.is_file():
                reason = "no such file" if not path.exists() else "not a file"
                self._file_problem(
                    ("accounts", index, "rules", number), f"cannot read rule file {path}: {reason}"
                )
                missing = True
                continue
            paths.append(path)
        try:
            rules = load_account_rules(paths)
        except RuleFileError as exc:
            self.rule_problems.extend(exc.problems)
            return None
        return None if missing else rules

    def _resolve(self, raw: str) -> Path:
        """A path from the config, relative to the config file's directory."""
        path = Path(raw.strip()).expanduser()
        return path if path.is_absolute() else self.base / path

    def _state_path(self, state: StateSettings) -> Path | None:
        path = Path(os.path.abspath(self._resolve(state.path)))
        if not path.parent.is_dir():
            self._file_problem(
                ("state", "path"),
                f"the directory {path.parent} does not exist; create it or choose another path",
            )
            return None
        if path.is_dir():
            self._file_problem(("state", "path"), f"{path} is a directory, not a database file")
            return None
        return path

    def _alerts(self, alerts: AlertsSettings) -> AlertsSettings | None:
        """``alerts`` with ``config_file`` made absolute, every URL and the config file
        checked by apprise itself, and every route's tag matched by some URL."""
        problems = len(self.file_problems) + len(self.other_problems)
        config_file: str | None = None
        tags: set[str] = set()
        if alerts.config_file is not None:
            path = Path(os.path.abspath(self._resolve(alerts.config_file)))
            if not path.is_file():
                reason = "no such file" if not path.exists() else "not a file"
                self._file_problem(
                    ("alerts", "config_file"),
                    f"cannot read the apprise config file {path}: {reason}",
                )
            elif not os.access(path, os.R_OK):
                self._file_problem(
                    ("alerts", "config_file"),
                    f"cannot read the apprise config file {path}: permission denied (it holds "
                    "tokens: under systemd hand it over with LoadCredential=, see "
                    "deploy/systemd/README.md)",
                )
            else:
                config_file = str(path)
                found = _apprise_file_tags(path)
                if found is None:
                    self._file_problem(
                        ("alerts", "config_file"),
                        f"apprise found no usable notification URL in {path}; see "
                        "deploy/apprise/apprise.yml for the format (version: 1, urls: ...)",
                    )
                else:
                    tags.update(found)
        for index, item in enumerate(alerts.urls):
            url = item.url.get_secret_value()
            if not _apprise_accepts(url):
                scheme = url.split("://", 1)[0].lower()
                self._file_problem(
                    ("alerts", "urls", index),
                    f"apprise cannot use this {scheme}:// URL (unknown service, or a part of "
                    "it is missing or malformed)",
                )
            tags.update(item.tags)
        if alerts.enabled:
            for severity, route in alerts.routes.items():
                for tag in route:
                    if tag not in tags:
                        known = ", ".join(sorted(tags)) or "none"
                        self._file_problem(
                            ("alerts", "routes", severity),
                            f"tag '{tag}' matches no alert URL (tags in use: {known})",
                        )
        if len(self.file_problems) + len(self.other_problems) > problems:
            return None
        return alerts.model_copy(update={"config_file": config_file})

    def _account(
        self, item: AccountSettings, rules: list[Rule], global_dry_run: bool
    ) -> AccountConfig:
        return AccountConfig(
            id=item.id,
            name=item.name or item.id,
            initial_balance=item.initial_balance,
            rule_files=[self._resolve(p) for p in item.rules],
            rules=rules,
            timezone=parse_zone(item.timezone),
            contract_sizes=MappingProxyType(dict(item.contract_sizes)),
            dry_run=item.dry_run,
            # The global switch is a kill switch: no account can trade while it is on.
            effective_dry_run=global_dry_run or bool(item.dry_run),
        )


# --- helpers -------------------------------------------------------------------------------------


def _client_settings(bridge: BridgeSettings, overrides: Mapping[str, Any]) -> ClientSettings:
    """``ClientSettings`` from ``bridge`` with every field given, so it reads no variable."""
    unknown = set(overrides) - set(ClientSettings.model_fields)
    if unknown:
        raise TypeError(f"not a ClientSettings field: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, info in ClientSettings.model_fields.items():
        value = overrides.get(name)
        if value is None:
            value = getattr(bridge, name, None)
        # An explicit None reaches a field without a None default only as its default value.
        values[name] = value if value is not None else info.get_default(call_default_factory=True)
    return ClientSettings(**values)


def _credential_problem(
    settings: ClientSettings, dirs: Sequence[Path], empty: Sequence[Path]
) -> str | None:
    """The line naming what to set when ``settings`` lacks a credential, else None."""
    try:
        settings.check_credentials()
    except ConfigurationError:
        pass
    else:
        return None
    if settings.auth_mode == "basic" and not settings.pro_username:
        var, what = f"{API2TRADE_PREFIX}PRO_USERNAME", "a Pro plan password is set but no username"
    elif settings.auth_mode == "basic":
        var, what = f"{API2TRADE_PREFIX}PRO_PASSWORD", "the Pro plan login has no password"
    else:
        var, what = f"{API2TRADE_PREFIX}API_KEY", "no bridge API key"
    where = (
        "searched: " + ", ".join(str(d) for d in dirs)
        if dirs
        else f"none configured: set {SECRETS_DIR_ENV}, or use LoadCredential= under systemd"
    )
    text = (
        f"{var}: {what}: set the {var} environment variable or put it in a file named {var} "
        f"in the secrets directory ({where})"
    )
    if var == f"{API2TRADE_PREFIX}API_KEY":
        text += (
            f"; Pro plans set {API2TRADE_PREFIX}PRO_USERNAME and "
            f"{API2TRADE_PREFIX}PRO_PASSWORD instead"
        )
    if empty:
        text += "; empty secrets files: " + ", ".join(str(p) for p in empty)
    return text


_Model = TypeVar("_Model", bound=BaseModel)


def _quietly(model: type[_Model], raw: object) -> _Model | None:
    """``raw`` as ``model``, or None if it is not valid (its problems are already reported)."""
    try:
        return model.model_validate({} if raw is None else raw)
    except ValidationError:
        return None


_ALERT_URLS_IN_FILE = (
    "'urls' holds apprise URLs, whose tokens and passwords do not belong in the config file: "
    f"set {ALERT_URLS_ENV} in the environment, or put the URLs in a file named "
    f"{ALERT_URLS_ENV} in the secrets directory ({SECRETS_DIR_ENV}, or $CREDENTIALS_DIRECTORY "
    "under systemd), or point alerts.config_file at an apprise config file only riskd can read"
)


@contextlib.contextmanager
def _apprise_quiet() -> Iterator[None]:
    """Apprise logs what it cannot parse; the problem lines here say it instead."""
    logger = logging.getLogger("apprise")
    was = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = was


def _apprise_accepts(url: str) -> bool:
    import apprise  # only when alerts are configured: apprise takes a while to import

    with _apprise_quiet():
        return apprise.Apprise.instantiate(url) is not None


def _apprise_file_tags(path: Path) -> set[str] | None:
    """The tags used in an apprise config file, or None if it names no usable service."""
    import apprise

    with _apprise_quiet():
        config = apprise.AppriseConfig()
        if not config.add(str(path)):
            return None
        manager = apprise.Apprise()
        manager.add(config)
        services = list(manager.find())
    if not services:
        return None
    return {str(tag) for service in services for tag in service.tags}


def _secret_in_file_message(key: str) -> str:
    var = {
        "api_key": f"{API2TRADE_PREFIX}API_KEY",
        "pro_password": f"{API2TRADE_PREFIX}PRO_PASSWORD",
        "password": f"{API2TRADE_PREFIX}PRO_PASSWORD",
    }.get(key.lower().replace("-", "_"))
    if var is not None:
        return (
            f"'{key}' is a secret and does not belong in the config file: set the {var} "
            f"environment variable or put the value in a file named {var} in the secrets "
            f"directory ({SECRETS_DIR_ENV}, or $CREDENTIALS_DIRECTORY under systemd)"
        )
    return (
        f"'{key}' looks like a secret, and secrets do not belong in the config file; riskd "
        f"reads the bridge credentials from {API2TRADE_PREFIX}API_KEY (or "
        f"{API2TRADE_PREFIX}PRO_USERNAME and {API2TRADE_PREFIX}PRO_PASSWORD) in the "
        f"environment or the secrets directory ({SECRETS_DIR_ENV}, or $CREDENTIALS_DIRECTORY)"
    )


def _secret_keys(data: object, loc: Loc) -> Iterator[Loc]:
    """Locations of keys named like a secret (``contract_sizes`` keys are symbols: skipped)."""
    if isinstance(data, dict):
        if loc and loc[-1] == "contract_sizes":
            return
        for key, value in data.items():
            if isinstance(key, str) and is_secret_name(key):
                yield (*loc, key)
            else:
                yield from _secret_keys(value, (*loc, key))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _secret_keys(item, (*loc, index))


def _delete(data: Any, loc: Loc) -> None:
    target = data
    for part in loc[:-1]:
        target = target[part]
    del target[loc[-1]]


def _section_model(annotation: object) -> type[BaseModel] | None:
    """The model class of a section field (``X`` or ``X | None``), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model of the mapping at ``loc`` (list items included), for "did you mean"."""
    model: type[BaseModel] = RiskdSettings
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        annotation = info.annotation
        if typing.get_origin(annotation) is list:
            annotation = typing.get_args(annotation)[0]
        inner = _section_model(annotation)
        if inner is None:
            return None
        model = inner
    return model


def _known_fields(loc: Loc) -> list[str]:
    model = _model_at(loc)
    return [name for name in model.model_fields if not is_secret_name(name)] if model else []


def _plain_message(err: ErrorDetails) -> str:
    """A problem's text without file or variable (pydantic's text never holds the input)."""
    loc = err["loc"]
    last = loc[-1] if loc else ""
    if err["type"] == "missing":
        return f"missing required field '{last}'"
    if err["type"] == "extra_forbidden":
        return f"unknown field '{last}'"
    message = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _variable_problem(origin: tuple[Loc, str], loc: Loc, err: ErrorDetails) -> str:
    """``VARIABLE: [where: ]what`` for a problem in a value a variable or file set."""
    origin_loc, name = origin
    shown = loc[:-1] if err["type"] in ("missing", "extra_forbidden") else loc
    message = _plain_message(err)
    secret = err["input"]
    if (
        any(isinstance(part, str) and is_secret_name(part) for part in loc)
        and isinstance(secret, str)
        and secret
        and secret in message
    ):
        # pydantic's own messages do not echo the input and no validator here does either;
        # this keeps a secret out even if one starts to.
        message = "invalid value"
    if shown == origin_loc or len(shown) < len(origin_loc):
        return f"{name}: {message}"
    return f"{name}: {default_describe_loc(shown)}: {message}"


def _init_details(err: ErrorDetails) -> InitErrorDetails:
    details: InitErrorDetails = {"type": err["type"], "loc": err["loc"], "input": err["input"]}
    if "ctx" in err:
        details["ctx"] = err["ctx"]
    return details


def _line_of(problem: str, path: str) -> int:
    rest = problem.removeprefix(f"{path}:")
    number = rest.split(":", 1)[0]
    return int(number) if number.isdigit() else 0
