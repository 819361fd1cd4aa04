"""deploy/kubernetes: rendered by a real kustomize, validated against Kubernetes' schemas, and
checked for what the schemas cannot see: the wiring between objects, the probes, the pod's
security, the sharding variables, and a config that riskd's own loader accepts.

kustomize: ``kustomize build`` when a standalone kustomize is on PATH, else ``kubectl
kustomize`` (kustomize v5 built into kubectl; the machine image has kubectl). Schemas:
kubernetes-validate, strict (unknown fields are errors), for the oldest Kubernetes the
manifests claim (1.30) and the newest the installed package knows. The ServiceMonitor is a
custom resource with no schema there; its wiring is checked by hand below.
"""

from __future__ import annotations

import copy
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from riskd.config import SECRET_FILES, load_config

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
README = KUBE / "README.md"
DOCKERFILE = ROOT / "Dockerfile"

MIN_KUBERNETES = "1.30"
KUBERNETES_VERSIONS = [MIN_KUBERNETES, kubernetes_validate.latest_version()]
NAMESPACE = "riskd"
UID = 10001

Obj = dict[str, Any]


def kustomize(directory: Path) -> list[Obj]:
    standalone = shutil.which("kustomize")
    if standalone:
        argv = [standalone, "build", str(directory)]
    else:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            # CI has kubectl (.ci/run checks); elsewhere these tests need it installed.
            pytest.skip("no kustomize: install kubectl (kustomize v5 inside) or kustomize")
        argv = [kubectl, "kustomize", str(directory)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> list[Obj]:
    return kustomize(KUBE)


def one(objects: list[Obj], kind: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def sts(rendered: list[Obj]) -> Obj:
    return one(rendered, "StatefulSet")


@pytest.fixture(scope="module")
def service(rendered: list[Obj]) -> Obj:
    return one(rendered, "Service")


@pytest.fixture(scope="module")
def container(sts: Obj) -> Obj:
    containers = sts["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["riskd"]
    result: Obj = containers[0]
    return result


def env_of(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


def mount(container: Obj, volume: str) -> str:
    paths = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == volume]
    assert len(paths) == 1, f"volume {volume} mounted {len(paths)} times"
    return str(paths[0])


def volume(sts: Obj, name: str) -> Obj:
    found = [v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == name]
    assert len(found) == 1, f"no pod volume {name}"
    result: Obj = found[0]
    return result


def is_custom(obj: Obj) -> bool:
    return str(obj["apiVersion"]).split("/")[0].endswith("monitoring.coreos.com")


def test_renders_the_expected_objects_in_one_namespace(rendered: list[Obj]) -> None:
    kinds = sorted(o["kind"] for o in rendered)
    assert kinds == ["ConfigMap", "Namespace", "Service", "ServiceMonitor", "StatefulSet"]
    assert one(rendered, "Namespace")["metadata"]["name"] == NAMESPACE
    for obj in rendered:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]


def test_base_is_everything_but_the_servicemonitor(rendered: list[Obj]) -> None:
    base = kustomize(BASE)
    assert base == [o for o in rendered if o["kind"] != "ServiceMonitor"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_objects_pass_the_kubernetes_schemas_strictly(rendered: list[Obj], version: str) -> None:
    checked = []
    for obj in rendered:
        if is_custom(obj):
            continue
        # Raises ValidationError (a wrong or unknown field) or SchemaNotFoundError.
        kubernetes_validate.validate(obj, version, strict=True)
        checked.append(obj["kind"])
    assert sorted(checked) == ["ConfigMap", "Namespace", "Service", "StatefulSet"]


def test_strict_validation_rejects_an_unknown_field(sts: Obj) -> None:
    """The validator bites: a misspelt field (readinesProbe) is an error, not ignored."""
    broken = copy.deepcopy(sts)
    pod = broken["spec"]["template"]["spec"]
    pod["containers"][0]["readinesProbe"] = pod["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, MIN_KUBERNETES, strict=True)


def test_servicemonitor_scrapes_the_services_metrics_port(
    rendered: list[Obj], service: Obj, container: Obj
) -> None:
    monitor = one(rendered, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selector = monitor["spec"]["selector"]
    assert set(selector) == {"matchLabels"}, "matchExpressions would need checking too"
    labels = service["metadata"]["labels"]
    assert selector["matchLabels"].items() <= labels.items()
    # The operator names the job after the Service: deploy/prometheus/riskd-rules.yml
    # selects job="riskd".
    assert service["metadata"]["name"] == "riskd"
    assert 'job="riskd"' in (ROOT / "deploy" / "prometheus" / "riskd-rules.yml").read_text()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    container_ports = {p["name"]: p for p in container["ports"]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint.get("path", "/metrics") == "/metrics"
    port = ports[endpoint["port"]]
    assert port["port"] == 9108
    assert port["targetPort"] == "metrics"
    assert container_ports[port["targetPort"]]["containerPort"] == 9108


def test_service_selects_the_pods_and_governs_the_statefulset(sts: Obj, service: Obj) -> None:
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert sts["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    # Unready replicas are still scraped (their alerts are why one looks).
    assert service["spec"]["publishNotReadyAddresses"] is True


def test_probes_hit_livez_and_readyz_on_the_named_port(container: Obj) -> None:
    live = container["livenessProbe"]["httpGet"]
    ready = container["readinessProbe"]["httpGet"]
    assert (live["path"], live["port"]) == ("/livez", "metrics")
    assert (ready["path"], ready["port"]) == ("/readyz", "metrics")
    # A hung event loop never answers: only a timeout fails the probe.
    assert container["livenessProbe"]["timeoutSeconds"] <= 5
    assert "startupProbe" not in container  # /livez answers from the first second


def test_pod_and_container_security(rendered: list[Obj], sts: Obj, container: Obj) -> None:
    pod = sts["spec"]["template"]["spec"]
    for ctx in (pod["securityContext"], container["securityContext"]):
        assert ctx["runAsNonRoot"] is True
        assert ctx["runAsUser"] == UID
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["fsGroup"] == UID
    assert pod["automountServiceAccountToken"] is False
    # Service links would inject RISKD_SERVICE_HOST & co., which riskd refuses at start-up.
    assert pod["enableServiceLinks"] is False
    # The image's user is the one the pod runs as (runAsNonRoot checks a numeric uid).
    user = re.search(r"^USER (\d+)", DOCKERFILE.read_text(), re.M)
    assert user and int(user.group(1)) == UID
    ns = one(rendered, "Namespace")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_volumes_match_the_paths_riskd_uses(sts: Obj, container: Obj) -> None:
    env = env_of(container)
    [claim] = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    state_dir = mount(container, claim["metadata"]["name"])
    assert Path(env["RISKD_STATE__PATH"]["value"]).parent == Path(state_dir)
    assert mount(container, "secrets") == env["RISKD_SECRETS_DIR"]["value"]
    assert volume(sts, "secrets")["secret"]["secretName"] == "riskd-secrets"
    args = container["args"]
    config = Path(args[args.index("--config") + 1])
    assert mount(container, "config") == str(config.parent)
    assert volume(sts, "config")["configMap"]["name"].startswith("riskd-config-")
    assert mount(container, "tmp") == "/tmp"  # noqa: S108
    assert "emptyDir" in volume(sts, "tmp")
    # Everything writable is a volume; config and secrets are mounted read-only.
    by_name = {m["name"]: m for m in container["volumeMounts"]}
    assert by_name["config"]["readOnly"] is True and by_name["secrets"]["readOnly"] is True


def test_shard_count_equals_replicas_and_pod_name_comes_from_the_downward_api(
    sts: Obj, container: Obj
) -> None:
    env = env_of(container)
    assert env["RISKD_SHARD_COUNT"]["value"] == str(sts["spec"]["replicas"])
    assert env["RISKD_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert sts["spec"]["podManagementPolicy"] == "Parallel"


def test_resources_from_the_benchmark(container: Obj) -> None:
    resources = container["resources"]
    assert resources["requests"]["memory"] == "256Mi"
    assert resources["limits"]["memory"] == "512Mi"
    # No CPU limit: CFS throttling would delay a flatten.
    assert "cpu" not in resources["limits"]
    assert "cpu" in resources["requests"]


def _materialize(config_map: Obj, directory: Path) -> Path:
    for key, text in config_map["data"].items():
        (directory / key).write_text(text, encoding="utf-8")
    return directory / "riskd.yaml"


def _pod_env(container: Obj, sts: Obj, secrets: Path, state: Path) -> dict[str, str]:
    """The container's environment as the kubelet sets it, with this machine's paths."""
    env: dict[str, str] = {}
    for name, entry in env_of(container).items():
        if "value" in entry:
            env[name] = entry["value"]
        else:
            assert entry["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            env[name] = f"{sts['metadata']['name']}-0"
    env["RISKD_SECRETS_DIR"] = str(secrets)
    env["RISKD_STATE__PATH"] = str(state / "state.sqlite")
    return env


def test_configmap_config_loads_with_riskds_loader(
    rendered: list[Obj], sts: Obj, container: Obj, tmp_path: Path
) -> None:
    config_dir, secrets, state = (tmp_path / d for d in ("etc", "secrets", "state"))
    for d in (config_dir, secrets, state):
        d.mkdir()
    config = _materialize(one(rendered, "ConfigMap"), config_dir)
    # The Secret the README creates, as the kubelet mounts it.
    (secrets / "API2TRADE_API_KEY").write_text("test-key\n")
    env = _pod_env(container, sts, secrets, state)
    loaded = load_config(config, env)
    # The pod name gives the shard: the StatefulSet's first pod is shard 0 of RISKD_SHARD_COUNT.
    assert loaded.shard.index == 0
    assert str(loaded.shard.count) == env["RISKD_SHARD_COUNT"]
    assert loaded.accounts and all(a.rules for a in loaded.accounts)
    assert loaded.state_path == state / "state.sqlite"
    assert loaded.client_settings().api_key is not None
    # Probes and Prometheus reach the pod IP on the container's port.
    port = container["ports"][0]["containerPort"]
    assert loaded.http.listen == f"0.0.0.0:{port}"


def test_rule_files_in_the_configmap_are_the_repositorys_presets(rendered: list[Obj]) -> None:
    data = one(rendered, "ConfigMap")["data"]
    rules = set(data) - {"riskd.yaml"}
    assert rules, "the config names rule files shipped beside it"
    for name in rules:
        preset = ROOT / "rules" / name
        if preset.exists():
            assert data[name] == preset.read_text(encoding="utf-8"), f"{name} drifted from rules/"
    named = yaml.safe_load(data["riskd.yaml"])["accounts"]
    assert {r for account in named for r in account["rules"]} <= rules


def _readme_commands() -> Iterator[list[str]]:
    text = README.read_text(encoding="utf-8")
    for block in re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith(("kubectl", "docker")):
                yield shlex.split(line, comments=True)


def test_readme_creates_the_secret_the_pod_mounts(sts: Obj) -> None:
    creates = [c for c in _readme_commands() if c[:4] == ["kubectl", "create", "secret", "generic"]]
    assert len(creates) == 1, creates
    [cmd] = creates
    assert cmd[4] == volume(sts, "secrets")["secret"]["secretName"]
    assert cmd[cmd.index("--namespace") + 1] == NAMESPACE
    keys = [a.split("=")[1] for a in cmd if a.startswith(("--from-file=", "--from-literal="))]
    # File names riskd reads in its secrets directory (riskd.config.SECRET_FILES).
    assert keys == ["API2TRADE_API_KEY"]
    assert set(keys) <= set(SECRET_FILES)


def test_readme_resizes_with_the_replicas_stopped() -> None:
    """Replicas and RISKD_SHARD_COUNT change in one apply, after every old pod is gone."""
    commands = [" ".join(c) for c in _readme_commands()]
    stop = commands.index("kubectl -n riskd scale statefulset riskd --replicas=0")
    wait = next(i for i, c in enumerate(commands) if c.startswith("kubectl -n riskd wait"))
    apply = next(i for i, c in enumerate(commands) if c.startswith("kubectl apply -k") and i > wait)
    assert stop < wait < apply
    readme = README.read_text(encoding="utf-8")
    assert '`replicas: 3` and RISKD_SHARD_COUNT `value: "3"`' in readme
    assert "rendezvous" in readme and "1/N" in readme
