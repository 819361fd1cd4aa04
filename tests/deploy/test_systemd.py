"""deploy/systemd/riskd.service: what systemd itself says of it, that it matches what riskd
reads, and that riskd works inside its restrictions.

No systemd runs as PID 1 here, so the unit is never started; instead:

- ``systemd-analyze verify`` (offline: it loads the unit, checks every directive and that the
  binaries exist, on a copy whose ExecStart= points at this venv's riskd) and
  ``systemd-analyze security --offline=yes`` (exposure score under 2.0);
- the unit's environment and credential names go through riskd's own config loader, and its
  watchdog signal leaves the Python stacks in the log;
- ``riskd run`` works under ``MemoryDenyWriteExecute=`` (the kernel's ``PR_SET_MDWE``, the
  same rule systemd enforces with seccomp) and makes no system call outside
  ``SystemCallFilter=`` and no socket outside ``RestrictAddressFamilies=`` (traced with
  strace), through a start, a breach and flatten, an alert, a reload and a stop.

CI needs systemd-analyze (Debian's ``systemd`` package) and strace (``strace``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from riskd.config import ALERT_URLS_ENV, SECRET_FILES, load_config
from riskd.sim import SimServer
from tests.daemon.conftest import (
    AlertWebhook,
    NotifySocket,
    RiskdProcess,
    daemon_config,
    daemon_env,
    unexpected_errors,
)

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "riskd.service"
EXEC_START = "/opt/riskd/bin/riskd run --config /etc/riskd/riskd.yaml"
ANALYZE = shutil.which("systemd-analyze")

needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)"
)


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of every assignment, in order (keys may repeat)."""
    out: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def service(key: str) -> list[str]:
    """Every value of ``key`` in [Service]."""
    return [v for s, k, v in directives(UNIT.read_text()) if s == "Service" and k == key]


def runnable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart= pointing at this venv's riskd, so ``verify`` finds it."""
    riskd = Path(sys.executable).with_name("riskd")
    assert riskd.is_file(), f"{riskd}: riskd is not installed in this venv"
    copy = tmp_path / "riskd.service"
    text = UNIT.read_text()
    assert text.count(f"ExecStart={EXEC_START}") == 1
    copy.write_text(text.replace(f"ExecStart={EXEC_START}", f"ExecStart={riskd} run --config "
                                 "/etc/riskd/riskd.yaml"))  # fmt: skip
    return copy


# -- systemd's own checks -------------------------------------------------------------------


@needs_analyze
def test_systemd_analyze_verify_passes(tmp_path: Path) -> None:
    assert ANALYZE is not None
    result = subprocess.run(  # noqa: S603 - a fixed tool on our own file
        [ANALYZE, "verify", str(runnable_copy(tmp_path))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "riskd.service" not in output, output  # no warning about the unit either


@needs_analyze
def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    # The check above means something: a misspelt directive fails it.
    copy = runnable_copy(tmp_path)
    copy.write_text(copy.read_text().replace("ProtectHome=yes", "ProtectHome=perhaps"))
    assert ANALYZE is not None
    result = subprocess.run(  # noqa: S603
        [ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    # A bad value is only a warning to systemd (exit 0): the output is what the test reads.
    assert "riskd.service" in result.stdout + result.stderr
    assert "perhaps" in result.stdout + result.stderr


@needs_analyze
def test_security_exposure_is_below_2() -> None:
    assert ANALYZE is not None
    result = subprocess.run(  # noqa: S603
        [ANALYZE, "security", "--offline=yes", str(UNIT)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for riskd\.service: (\d+(?:\.\d+)?)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    assert float(found.group(1)) < 2.0, result.stdout


# -- what the unit says ---------------------------------------------------------------------


def test_unit_has_the_settings_riskd_relies_on() -> None:
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "ExecStart": EXEC_START,
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "Restart": "on-failure",
        "RestartPreventExitStatus": "2",
        "KillSignal": "SIGTERM",
        "DynamicUser": "yes",
        "StateDirectory": "riskd",
        "ConfigurationDirectory": "riskd",
        "UMask": "0077",
        "ProtectSystem": "strict",
        "ProtectProc": "invisible",
        "MemoryDenyWriteExecute": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallArchitectures": "native",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "DevicePolicy": "closed",
    }
    for key, value in expected.items():
        assert service(key) == [value], key
    assert service("SystemCallFilter") == ["@system-service", "~@privileged @resources"]
    # The watchdog must outlast a few missed pings (riskd pings every WatchdogSec/2) and the
    # stop must outlast the in-flight flatten riskd waits for (30 s) plus the alert drain.
    assert _seconds(service("WatchdogSec")[0]) >= 10
    assert _seconds(service("TimeoutStopSec")[0]) >= 60


def _seconds(span: str) -> float:
    value = re.fullmatch(r"(\d+)(s|min)", span)
    assert value is not None, span
    return int(value.group(1)) * (60 if value.group(2) == "min" else 1)


def test_unit_environment_and_credentials_are_what_riskd_reads(tmp_path: Path) -> None:
    """The unit's Environment= and LoadCredential= names, as systemd sets them, make a config
    load: the state lands in the StateDirectory and the key comes from the credentials."""
    state = tmp_path / "var-lib"  # stands for %S (/var/lib)
    (state / "riskd").mkdir(parents=True)
    creds = tmp_path / "credentials"  # stands for $CREDENTIALS_DIRECTORY
    creds.mkdir()
    names = []
    for value in service("LoadCredential"):
        name, _, source = value.partition(":")
        assert source == f"/etc/riskd/credentials/{name}"  # as deploy/systemd/README.md says
        names.append(name)
    assert sorted(names) == sorted(["API2TRADE_API_KEY", ALERT_URLS_ENV])
    assert set(names) - {ALERT_URLS_ENV} <= set(SECRET_FILES)
    (creds / "API2TRADE_API_KEY").write_text("unit-test-key\n")
    (creds / ALERT_URLS_ENV).write_text("")  # empty: no apprise target, as the README allows
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    for value in service("Environment"):
        name, _, setting = value.partition("=")
        env[name] = setting.replace("%S", str(state))
    config = tmp_path / "riskd.yaml"
    (tmp_path / "rules.yaml").write_text(
        "- name: max-loss\n  kind: max_loss\n  limit: 1000\n  action: lockout\n"
    )
    config.write_text(
        "accounts:\n  - id: 3f9a6c1e-2b47-4d8a-9e15-7c0d2a4b8f61\n"
        "    initial_balance: 100000\n    rules: [rules.yaml]\n"
    )
    loaded = load_config(config, env)  # an unknown RISKD_* name or bad credential raises
    assert loaded.state_path == state / "riskd" / "state.sqlite"
    api_key = loaded.client_settings().api_key
    assert api_key is not None and api_key.get_secret_value() == "unit-test-key"
    assert not loaded.alerts.enabled


def test_watchdog_kill_leaves_the_stacks_in_the_log(tmp_path: Path, sim: SimServer) -> None:
    """What systemd does when the pings stop (WatchdogSignal=SIGABRT), to riskd started with
    the unit's environment: it dies, leaving every thread's Python stack in the journal."""
    assert service("WatchdogSignal") == ["SIGABRT"]
    account = sim.create_account()
    config = daemon_config(tmp_path, sim, account, RULES.format(limit=1000))
    unit_env = dict(v.partition("=")[::2] for v in service("Environment"))
    unit_env["RISKD_STATE__PATH"] = str(tmp_path / "state.sqlite")  # for %S/riskd/...
    assert unit_env.get("PYTHONFAULTHANDLER") == "1"
    riskd = RiskdProcess(config, daemon_env(tmp_path, sim.api_key, **unit_env), tmp_path / "log")
    riskd.start()
    try:
        riskd.wait_log("riskd watching 1 account")
        riskd.signal(signal.SIGABRT)
        assert riskd.wait() == -signal.SIGABRT
    finally:
        riskd.kill()
    log = riskd.text()
    assert "Fatal Python error: Aborted" in log
    assert "most recent call first" in log and "asyncio" in log, log


# -- riskd inside the unit's restrictions ---------------------------------------------------

PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1

# Sets the kernel's memory-deny-write-execute on itself, then becomes the command after it
# (the setting is inherited across exec, as systemd's seccomp filter is).
MDWE_LAUNCHER = (
    "import ctypes, os, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:\n"
    "    sys.exit('PR_SET_MDWE failed: errno %d' % ctypes.get_errno())\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


@cache
def _mdwe_unsupported() -> str | None:
    """Why this kernel cannot enforce PR_SET_MDWE (Linux 6.3+), or None."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) < 0:
        return f"kernel without PR_SET_MDWE (errno {errno.errorcode[ctypes.get_errno()]})"
    return None


RULES = "- name: max-loss\n  kind: max_loss\n  limit: {limit}\n  action: lockout\n"

NOBODY = 65534
# What DynamicUser=, CapabilityBoundingSet=, AmbientCapabilities= and NoNewPrivileges= make of
# the process: another uid and gid, no supplementary group, no capability at all.
AS_SERVICE_USER = [
    "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
]  # fmt: skip


@cache
def _service_user() -> list[str]:
    """The launcher that drops to an unprivileged user, as systemd does; empty when this
    process is not root (it is unprivileged already) or setpriv cannot run riskd."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return []
    probe = subprocess.run(  # noqa: S603
        [*AS_SERVICE_USER, sys.executable, "-c", "import riskd, apprise"],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    return AS_SERVICE_USER if probe.returncode == 0 else []


def _run_scenario(sim: SimServer, launcher: list[str], *, launcher_stays: bool = False) -> str:
    """Run riskd as the unit would (an unprivileged user, credentials in a directory, the
    notify socket, a watchdog) behind ``launcher``: READY, a breach, its flatten and alert, a
    reload, SIGTERM. Fails the test if any step does not happen; returns riskd's log."""
    sim.set_price("EURUSD", 1.08500, 1.08510)
    account = sim.create_account(balance=100_000.0)
    sim.open_position(account, "EURUSD", "buy", 1.0, open_price=1.09100)  # -600
    user = _service_user()
    # Outside pytest's root-only tmp directory, so that the service user can reach it; short,
    # for the socket path.
    work = Path(tempfile.mkdtemp(prefix="riskd-unit-"))
    notify = NotifySocket(work / "notify.sock")
    webhook = AlertWebhook()
    log = work / "riskd.log"  # written through the fd riskd inherits, whoever owns it
    try:
        config = daemon_config(work, sim, account, RULES.format(limit=1000))
        env = daemon_env(work, sim.api_key, NOTIFY_SOCKET=notify.address,
                         WATCHDOG_USEC="500000", PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
        (work / "credentials" / ALERT_URLS_ENV).write_text(webhook.url)
        if user:
            for path in (work, *work.rglob("*")):
                os.chown(path, NOBODY, NOBODY)  # the StateDirectory and credentials are its own
        riskd = RiskdProcess(config, env, log, [*launcher, *user])
        riskd.signal_child = launcher_stays
        riskd.start()
        try:
            _wait(lambda: any("READY" in m for m in notify.messages), riskd)
            sim.set_price("EURUSD", 1.07900, 1.07910)  # -1,200: breach, flatten, alert
            _wait(lambda: sim.positions(account) == [], riskd)
            _wait(lambda: any("max-loss" in t for t in webhook.titles()), riskd)
            (work / "rules.yaml").write_text(RULES.format(limit=2000))
            riskd.signal(signal.SIGHUP)
            riskd.wait_log("config reloaded: account=", 60)
            riskd.signal(signal.SIGTERM)
            assert riskd.wait(60) == 0, riskd.text()
            notify.wait_for(lambda ms: any(m.get("STOPPING") == "1" for m in ms), 10)
        finally:
            riskd.kill()
        return riskd.text()
    finally:
        webhook.close()
        notify.close()
        shutil.rmtree(work, ignore_errors=True)


def _wait(predicate: Callable[[], bool], riskd: RiskdProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if riskd.proc is not None and riskd.proc.poll() is not None:
            raise AssertionError(f"riskd exited ({riskd.proc.returncode}):\n{riskd.text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in time:\n{riskd.text()}")
        time.sleep(0.05)


def test_mdwe_launcher_really_denies_write_execute_memory() -> None:
    """The launcher's restriction holds in the program it starts (else the next test proves
    nothing)."""
    if (reason := _mdwe_unsupported()) is not None:
        pytest.skip(reason)
    probe = (
        "import ctypes, mmap\n"
        "print(ctypes.CDLL(None).prctl(66, 0, 0, 0, 0))\n"
        "try:\n"
        "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "    print('mapped')\n"
        "except PermissionError:\n"
        "    print('denied')\n"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", MDWE_LAUNCHER, sys.executable, "-c", probe],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert out == [str(PR_MDWE_REFUSE_EXEC_GAIN), "denied"]


def test_riskd_works_under_memory_deny_write_execute(tmp_path: Path, sim: SimServer) -> None:
    if (reason := _mdwe_unsupported()) is not None:
        pytest.skip(reason)
    log = _run_scenario(sim, [sys.executable, "-c", MDWE_LAUNCHER])
    assert unexpected_errors(log) == []


STRACE = shutil.which("strace")


@cache
def _filter_set(name: str) -> frozenset[str]:
    """The system calls of a systemd filter set, nested sets expanded."""
    assert ANALYZE is not None
    listing = subprocess.run(  # noqa: S603
        [ANALYZE, "syscall-filter", name], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    calls: set[str] = set()
    for raw in listing.splitlines()[1:]:  # the first line is the set's own name
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        calls |= _filter_set(line) if line.startswith("@") else {line}
    return frozenset(calls)


def _allowed_syscalls() -> frozenset[str]:
    """What the unit's SystemCallFilter= lets through: the first line allows, ~ denies."""
    allowed: frozenset[str] = frozenset()
    for value in service("SystemCallFilter"):
        deny = value.startswith("~")
        names = value.removeprefix("~").split()
        calls = frozenset().union(*(_filter_set(n) if n.startswith("@") else {n} for n in names))
        allowed = allowed - calls if deny else allowed | calls
    return allowed


@needs_analyze
@pytest.mark.skipif(STRACE is None, reason="strace not installed (apt-get install strace)")
@pytest.mark.timeout(240)  # every system call stops in the tracer: several times slower
def test_riskd_stays_inside_the_syscall_filter_and_address_families(
    tmp_path: Path, sim: SimServer
) -> None:
    trace = tmp_path / "strace.txt"
    assert STRACE is not None
    # strace stays riskd's parent (signals go to riskd itself) and exits with its status.
    # -s: whole strings (paths), so riskd's own execve is found whatever the checkout path.
    _run_scenario(sim, [STRACE, "-f", "-qq", "-s", "4096", "-o", str(trace)], launcher_stays=True)
    text = trace.read_text()
    # From riskd's own start: setpriv's privilege dropping happens before, as systemd's does.
    text = text[text.rfind("\n", 0, text.index(f'execve("{sys.executable}"')) + 1 :]
    if not _service_user():
        # Run as root after all: SQLite then hands its journal files to the database's owner
        # (fchown), which it never does as the service user.
        text = re.sub(r"^\d+ +fchown\(.*\n", "", text, flags=re.M)
    used = set(re.findall(r"^\d+ +(?:<\.\.\. )?([a-z0-9_]+)\(", text, re.M))
    assert {"execve", "socket", "sendto"} <= used  # the trace did see riskd work
    assert used - _allowed_syscalls() == set()
    families = set(re.findall(r"\bsocket\((AF_[A-Z0-9]+)", text))
    allowed_families = set(service("RestrictAddressFamilies")[0].split())
    assert families <= allowed_families, families - allowed_families
    assert "AF_UNIX" in families  # the notify socket and the rest were seen
