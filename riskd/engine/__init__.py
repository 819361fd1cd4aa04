"""riskd's rule engine: pure functions from an account snapshot and rule states to verdicts.

The data flow, one module per step:

- ``schema``: the rule file format (pydantic), validated once at load;
- ``loader``: rule files in, compiled rules out, or every problem as ``file:line: ...``;
- ``rules``: compiled rules, each kind's maths precomputed;
- ``clock``: daily reset clocks in IANA zones, correct across DST;
- ``snapshot``: the input (``AccountSnapshot``);
- ``state``: what a rule remembers (``RuleState``), ``unlatch``, day-start baselines;
- ``periods``: ``due_roll`` / ``roll_period``, which the monitor calls to start a day;
- ``evaluate``: the pure evaluation, run on every tick;
- ``verdict``: the output (``Verdict``, ``Evaluation``, ``Status``, ``Newly``).

Nothing here does I/O except ``loader`` reading rule files, and nothing reads a clock.
"""

from riskd.engine.clock import ResetClock
from riskd.engine.evaluate import WARN_REARM, evaluate
from riskd.engine.loader import (
    RuleFileError,
    check_rule_files,
    check_unique_names,
    load_account_rules,
    load_rule_file,
    parse_rules,
)
from riskd.engine.periods import due_roll, roll_period
from riskd.engine.rules import Rule, compile_rule
from riskd.engine.snapshot import AccountSnapshot, OpenPosition
from riskd.engine.state import INITIAL_STATE, RuleState, derive_day_start_balance, unlatch
from riskd.engine.verdict import Evaluation, Newly, Status, Verdict

__all__ = [
    "INITIAL_STATE",
    "WARN_REARM",
    "AccountSnapshot",
    "Evaluation",
    "Newly",
    "OpenPosition",
    "ResetClock",
    "Rule",
    "RuleFileError",
    "RuleState",
    "Status",
    "Verdict",
    "check_rule_files",
    "check_unique_names",
    "compile_rule",
    "derive_day_start_balance",
    "due_roll",
    "evaluate",
    "load_account_rules",
    "load_rule_file",
    "parse_rules",
    "roll_period",
    "unlatch",
]
