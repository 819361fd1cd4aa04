"""The rule file schema: what a trader may write, validated by pydantic.

A rule file is a YAML list of rules; each rule is a mapping with a ``kind`` that selects its
fields (a discriminated union). Unknown fields are errors (``extra="forbid"``), so a typo such
as ``limti:`` is reported instead of silently ignored. Cross-field checks are field validators
on the later field, so an error points at the line of the field that has to change.

These models are only the validated text of a file. ``riskd.engine.rules.compile_rule`` turns
them into the ``Rule`` objects the engine evaluates; no pydantic code runs per tick.
"""

from __future__ import annotations

from datetime import time, timedelta, tzinfo
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from riskd.engine.units import (
    Quantity,
    parse_clock_time,
    parse_duration,
    parse_fraction,
    parse_quantity,
    parse_zone,
)

Kind = Literal[
    "daily_loss",
    "max_loss",
    "trailing_drawdown",
    "margin_level",
    "exposure",
    "profit_target",
    "stale_data",
]
KINDS: tuple[Kind, ...] = (
    "daily_loss",
    "max_loss",
    "trailing_drawdown",
    "margin_level",
    "exposure",
    "profit_target",
    "stale_data",
)
Action = Literal["alert", "close_all", "lockout"]
Severity = Literal["info", "warning", "critical"]

QuantityField = Annotated[Quantity, BeforeValidator(parse_quantity)]
DurationField = Annotated[timedelta, BeforeValidator(parse_duration)]
ClockField = Annotated[time, BeforeValidator(parse_clock_time)]
ZoneField = Annotated[tzinfo, BeforeValidator(parse_zone)]
FractionField = Annotated[float, BeforeValidator(parse_fraction)]

RULE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        arbitrary_types_allowed=True,
        populate_by_name=False,
        str_strip_whitespace=True,
    )


class ResetSpec(_Model):
    """``{at: "00:00", zone: Europe/Prague}``: a daily wall-clock time in a zone."""

    at: ClockField
    zone: ZoneField


class _RuleSpec(_Model):
    """Fields every rule has."""

    name: Annotated[str, Field(pattern=RULE_NAME_PATTERN)]
    description: str = ""
    for_: DurationField = Field(default=timedelta(0), alias="for")
    warn_at: tuple[FractionField, ...] = ()
    action: Action = "alert"
    confirm: bool = True
    severity: Severity | None = None
    labels: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict
    )
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("warn_at")
    @classmethod
    def _warn_levels_ascending(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each warning level may be given once")
        return tuple(sorted(value))


def _limit_must_be_positive(limit: Quantity) -> Quantity:
    if limit.value <= 0:
        raise ValueError("the allowed loss must be more than zero")
    if limit.percent and limit.value > 100:
        raise ValueError("a loss limit above 100% can never be reached")
    return limit


LimitField = Annotated[
    Quantity, BeforeValidator(parse_quantity), AfterValidator(_limit_must_be_positive)
]


def _limit_matches_limit_of(limit: Quantity, info: ValidationInfo) -> Quantity:
    """Check ``limit`` against ``limit_of`` (declared before it), at the ``limit:`` line."""
    if "limit_of" not in info.data:  # limit_of itself is invalid and reported on its own
        return limit
    limit_of = info.data["limit_of"]
    if not limit.percent and limit_of is not None:
        raise ValueError(
            f"{limit} is an amount of money, but limit_of says what a percentage is of "
            "(write e.g. limit: 5%, or remove limit_of)"
        )
    return limit


class DailyLossSpec(_RuleSpec):
    """Equity floor = the day-start baseline minus the limit, reset daily."""

    kind: Literal["daily_loss"]
    baseline: Literal["balance", "equity", "max_balance_equity"]
    # limit_of is declared before limit so the limit validator sees it: problems with the
    # pair are reported at the limit: line, whichever order the file has them in.
    limit_of: Literal["initial_balance", "day_start"] | None = None
    limit: LimitField
    reset: ResetSpec

    @field_validator("limit")
    @classmethod
    def _limit_needs_limit_of(cls, limit: Quantity, info: ValidationInfo) -> Quantity:
        if limit.percent and info.data.get("limit_of", "") is None:
            raise ValueError(
                f"say what {limit} is a percentage of: add 'limit_of: initial_balance' "
                "(FTMO) or 'limit_of: day_start' (The5ers)"
            )
        return _limit_matches_limit_of(limit, info)


class MaxLossSpec(_RuleSpec):
    """A static equity floor: initial balance minus the limit."""

    kind: Literal["max_loss"]
    limit_of: Literal["initial_balance"] | None = None
    limit: LimitField
    reset: None = None

    _check_limit = field_validator("limit")(_limit_matches_limit_of)

    @field_validator("reset", mode="before")
    @classmethod
    def _never_resets(cls, value: Any) -> None:
        raise ValueError(
            "a max_loss rule never resets; after a breach a person unlocks it (remove reset)"
        )


class TrailingDrawdownSpec(_RuleSpec):
    """Equity floor = high-water mark minus the limit, optionally capped at the initial balance."""

    kind: Literal["trailing_drawdown"]
    limit_of: Literal["initial_balance"] | None = None
    limit: LimitField
    track: Literal["balance", "equity"]
    end_of_day: ResetSpec | None = None  # before update, so update's validator sees it
    update: Literal["intraday", "end_of_day"]
    lock_at_initial: bool = False
    reset: None = None

    _check_limit = field_validator("limit")(_limit_matches_limit_of)

    @field_validator("reset", mode="before")
    @classmethod
    def _never_resets(cls, value: Any) -> None:
        raise ValueError(
            "a trailing_drawdown rule never resets; after a breach a person unlocks it "
            "(for the end-of-day update time use end_of_day: {at: ..., zone: ...})"
        )

    @field_validator("update")
    @classmethod
    def _update_matches_end_of_day(cls, update: str, info: ValidationInfo) -> str:
        if "end_of_day" not in info.data:  # end_of_day itself is invalid, reported on its own
            return update
        if update == "end_of_day" and info.data["end_of_day"] is None:
            raise ValueError(
                "'update: end_of_day' needs the time the day ends, e.g. "
                'end_of_day: {at: "00:00", zone: Europe/Prague}'
            )
        if update == "intraday" and info.data["end_of_day"] is not None:
            raise ValueError(
                "end_of_day is only used with 'update: end_of_day'; an intraday mark moves "
                "on every evaluation (remove end_of_day, or write update: end_of_day)"
            )
        return update


class MarginLevelSpec(_RuleSpec):
    """Margin level (equity / margin x 100) below a percentage; ignored while no margin is used."""

    kind: Literal["margin_level"]
    below: QuantityField
    reset: ResetSpec | None = None

    @field_validator("below")
    @classmethod
    def _below_is_percent(cls, value: Quantity) -> Quantity:
        if value.value <= 0:
            raise ValueError("the margin level threshold must be more than 0%")
        return Quantity(value.value, percent=True)


class ExposureSpec(_RuleSpec):
    """Open exposure above a cap: total lots, lots on one symbol, or number of positions."""

    kind: Literal["exposure"]
    max_total_lots: Annotated[float, Field(gt=0)] | None = None
    max_lots_per_symbol: Annotated[float, Field(gt=0)] | None = None
    # validate_default: "no cap at all" is found by max_positions' validator.
    max_positions: Annotated[int, Field(ge=0)] | None = Field(default=None, validate_default=True)
    reset: ResetSpec | None = None

    @field_validator("max_lots_per_symbol", "max_positions")
    @classmethod
    def _one_cap_per_rule(cls, value: float | None, info: ValidationInfo) -> float | None:
        earlier = [name for name in _CAPS if name in info.data and info.data[name] is not None]
        if value is not None and earlier:
            raise ValueError(
                f"a rule has one cap and {earlier[0]} is already set; write one rule per cap"
            )
        if value is None and info.field_name == "max_positions" and not earlier:
            raise ValueError(f"set one of {', '.join(_CAPS)}")
        return value


_CAPS = ("max_total_lots", "max_lots_per_symbol", "max_positions")


class ProfitTargetSpec(_RuleSpec):
    """Equity at or above the target (a gain over the initial balance)."""

    kind: Literal["profit_target"]
    target: QuantityField
    target_of: Literal["initial_balance"] | None = None
    action: Literal["alert", "close_all"] = "alert"
    reset: ResetSpec | None = None

    @field_validator("target")
    @classmethod
    def _target_positive(cls, value: Quantity) -> Quantity:
        if value.value <= 0:
            raise ValueError("the profit target must be more than zero")
        return value


class StaleDataSpec(_RuleSpec):
    """No successful poll, or no tick while positions are open, for longer than a duration."""

    kind: Literal["stale_data"]
    max_poll_age: DurationField
    max_tick_age: DurationField | None = None
    action: Literal["alert"] = "alert"

    @field_validator("action", mode="before")
    @classmethod
    def _alert_only(cls, value: Any) -> Any:
        if value != "alert":
            raise ValueError(
                "stale_data rules can only alert (action: alert): stale numbers must never "
                "flatten an account or clear a latch"
            )
        return value

    @field_validator("max_poll_age", "max_tick_age")
    @classmethod
    def _positive_age(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("the age must be more than zero, e.g. 30s")
        return value


RuleSpec = Annotated[
    DailyLossSpec
    | MaxLossSpec
    | TrailingDrawdownSpec
    | MarginLevelSpec
    | ExposureSpec
    | ProfitTargetSpec
    | StaleDataSpec,
    Field(discriminator="kind"),
]
"""One rule of a rule file, selected by its ``kind``."""

SPEC_BY_KIND: dict[str, type[_RuleSpec]] = {
    "daily_loss": DailyLossSpec,
    "max_loss": MaxLossSpec,
    "trailing_drawdown": TrailingDrawdownSpec,
    "margin_level": MarginLevelSpec,
    "exposure": ExposureSpec,
    "profit_target": ProfitTargetSpec,
    "stale_data": StaleDataSpec,
}


def field_names(kind: str | None) -> list[str]:
    """The field names (as written in YAML) a rule of ``kind`` accepts; all kinds if unknown."""
    models = [SPEC_BY_KIND[kind]] if kind in SPEC_BY_KIND else list(SPEC_BY_KIND.values())
    names: dict[str, None] = {}
    for model in models:
        for name, info in model.model_fields.items():
            names[info.alias or name] = None
    return list(names)
