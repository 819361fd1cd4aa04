"""riskd: a risk guard for MT4/MT5 accounts behind the API2Trade bridge."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from riskd import __version__

if TYPE_CHECKING:
    from riskd.config import Config


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="riskd", description=__doc__)
    parser.add_argument("--version", action="version", version=f"riskd {__version__}")
    parser.add_argument(
        "--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    from riskd.bench.cli import add_bench_parser
    from riskd.sim.cli import add_sim_parser

    _add_daemon_parsers(sub)
    add_sim_parser(sub)
    add_bench_parser(sub)
    _add_check_parsers(sub)
    return parser


def _add_daemon_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``riskd run``, ``riskd demo`` and ``riskd unlock``."""
    run = subparsers.add_parser(
        "run", help="watch the configured accounts and enforce their rules",
        description="Run the daemon until SIGTERM/SIGINT; SIGHUP reloads the rule files. A "
        "bad config or rule file stops start-up with every problem as 'file:line: what is "
        "wrong' (exit 2); at a reload it is logged and the running rules stay in force.",
    )  # fmt: skip
    run.add_argument("--config", "-c", type=Path, required=True, help="config file (YAML)")
    run.set_defaults(handler=run_daemon)

    demo = subparsers.add_parser(
        "demo", help="watch riskd guard an FTMO account through a sell-off on the simulator",
        description="Starts the simulator in-process, runs the daemon with the FTMO 2-Step "
        "preset and scripts a sell-off: warnings, breach, flatten, lockout. No key needed.",
    )  # fmt: skip
    demo.add_argument("--speed", type=float, default=1.0, help="time compression (default 1)")
    demo.set_defaults(handler=run_demo)

    unlock = subparsers.add_parser(
        "unlock", help="clear a latched rule of an account (a person's decision)",
        description="Clear the latch of a rule that never resets (max_loss, trailing "
        "drawdown) or end a lockout early. Stop riskd first: a running daemon keeps its own "
        "copy of the state and would write the latch back.",
    )  # fmt: skip
    unlock.add_argument("--config", "-c", type=Path, required=True, help="config file (YAML)")
    unlock.add_argument("account", help="account id (UUID) from the config")
    unlock.add_argument("rule", help="rule name")
    unlock.set_defaults(handler=run_unlock)


def _load(path: Path, *, require_credentials: bool) -> Config | None:
    from riskd.config import ConfigError, load_config

    try:
        return load_config(path, require_credentials=require_credentials)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"riskd: {path}: not started ({len(exc.problems)} problem(s))", file=sys.stderr)
        return None


def run_daemon(args: argparse.Namespace) -> int:
    """``riskd run --config FILE``: 0 after a graceful stop, 2 on a bad config.

    SIGHUP reloads the rules from the same file and environment (see ``riskd.service``);
    under systemd (``$NOTIFY_SOCKET``) riskd reports readiness, status and watchdog pings.
    """
    import asyncio
    import os

    from riskd.actions.notify import AlertConfigError
    from riskd.config import load_config
    from riskd.sdnotify import Notifier
    from riskd.service import Service, ServiceSettings, run_until_signalled, settings_from_config
    from riskd.store import StateInUseError

    # The environment as riskd started with it: a reload reads the files again, not a
    # changed environment (the process's own cannot change from outside anyway).
    env = dict(os.environ)
    config = _load(args.config, require_credentials=True)
    if config is None:
        return 2
    try:
        service = Service(settings_from_config(config))
    except AlertConfigError as exc:
        for problem in exc.problems:
            print(f"{args.config}: alerts: {problem}", file=sys.stderr)
        return 2
    except StateInUseError as exc:
        print(f"riskd: not started: {exc}", file=sys.stderr)
        return 1

    def reload() -> ServiceSettings:
        return settings_from_config(load_config(args.config, env, require_credentials=True))

    try:
        asyncio.run(run_until_signalled(service, reload=reload, notifier=Notifier(env)))
    except OSError as exc:  # e.g. the metrics port is taken
        print(f"riskd: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """``riskd demo``: 0 when riskd flattened and locked out the demo account."""
    from riskd.demo import main as demo_main

    return demo_main(speed=args.speed)


def run_unlock(args: argparse.Namespace) -> int:
    """``riskd unlock --config FILE ACCOUNT RULE``."""
    from riskd.engine import unlatch
    from riskd.store import StateInUseError, StateStore

    config = _load(args.config, require_credentials=False)
    if config is None:
        return 2
    try:
        store = StateStore(config.state_path)
    except StateInUseError as exc:
        # A running riskd keeps its own copy of the latch and would write it back.
        print(f"riskd: not unlocked: {exc}", file=sys.stderr)
        return 1
    try:
        states = store.load_rule_states(args.account)
        state = states.get(args.rule)
        if state is None or not state.latched:
            print(f"riskd: {args.account} {args.rule}: not latched; nothing to do",
                  file=sys.stderr)  # fmt: skip
            return 1
        store.save_rule_states(args.account, {args.rule: unlatch(state)})
    finally:
        store.close()
    print(f"unlocked {args.rule} on {args.account} (it latches again if still breached)")
    return 0


def _add_check_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``riskd check-rules`` and ``riskd check-config``: offline checks."""
    rules = subparsers.add_parser(
        "check-rules",
        help="check rule files; print every problem as file:line, exit 1 on any",
        description=(
            "Load and validate rule files as the daemon would. Prints every problem of every "
            "file to stderr as 'file:line: what is wrong' and exits 1 on any problem; "
            "otherwise prints 'ok: N rules in M files'."
        ),
    )
    rules.add_argument("files", nargs="+", type=Path, metavar="FILE", help="rule files (YAML)")
    rules.set_defaults(handler=run_check_rules)

    config = subparsers.add_parser(
        "check-config",
        help="check a config file and every rule file it uses (no credentials needed)",
        description=(
            "Load a riskd config file with its RISKD_* / API2TRADE_* overrides and every "
            "rule file its accounts use, as 'riskd run' would, without requiring bridge "
            "credentials. Prints every problem to stderr and exits 1 on any."
        ),
    )
    config.add_argument("config", type=Path, metavar="CONFIG", help="config file (YAML)")
    config.set_defaults(handler=run_check_config)


def run_check_rules(args: argparse.Namespace) -> int:
    """``riskd check-rules FILE...``: 0 when every file is good, else 1."""
    from riskd.engine.loader import check_rule_files, load_rule_file

    files: list[Path] = args.files
    problems = check_rule_files(files)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    count = sum(len(load_rule_file(path)) for path in files)
    print(f"ok: {_plural(count, 'rule')} in {_plural(len(files), 'file')}")
    return 0


def run_check_config(args: argparse.Namespace) -> int:
    """``riskd check-config CONFIG``: 0 when the config and its rule files are good, else 1."""
    from riskd.config import ConfigError, load_config

    try:
        config = load_config(args.config, require_credentials=False)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    rules = sum(len(account.rules) for account in config.accounts)
    files = {path for account in config.accounts for path in account.rule_files}
    print(
        f"ok: {_plural(len(config.accounts), 'account')}, {_plural(rules, 'rule')} "
        f"in {_plural(len(files), 'rule file')}"
    )
    for note in _config_notes(config):
        print(f"note: {note}")
    return 0


def _config_notes(config: Config) -> list[str]:
    """What ``riskd run`` would do differently from what the file suggests (not errors: a
    check run without the service's credentials or environment is normal)."""
    from riskd.config import ConfigError

    notes = []
    try:
        config.client_settings()
    except ConfigError as exc:
        notes.append(
            f"{'; '.join(exc.problems)} (in this environment: `riskd run` would refuse to start)"
        )
    alerts = config.alerts
    routed = sorted({tag for route in alerts.routes.values() for tag in route})
    if routed and not alerts.enabled:
        notes.append(
            f"alerts.routes names {', '.join(routed)} but no alert target is configured "
            "(RISKD_ALERTS__URLS or alerts.config_file): alerts go to the log only"
        )
    shard = config.shard
    if shard.count > 1:
        notes.append(
            f"{shard.describe()}: this replica watches {len(config.owned_accounts)} of "
            f"{_plural(len(config.accounts), 'account')}"
        )
    return notes


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``riskd`` console script; returns the process exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if logging.getLogger().level > logging.DEBUG:
        # One line per poll and request from these would drown riskd's own events.
        for noisy in ("apscheduler", "aiohttp", "uvicorn", "websockets"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    handler = args.handler
    code: int = handler(args)
    return code
