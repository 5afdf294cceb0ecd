"""Schema checks of what cannot run here: prefect.yaml, docker-compose.yml, deploy/.

No Docker engine or cluster is available, so each file is validated offline against the
schema its tool uses: Kubernetes resources against the Kubernetes 1.37 OpenAPI schemas
(`kubernetes-validate`, strict: unknown fields fail), the compose file against the
compose-spec JSON schema (shipped in `check-jsonschema`), prefect.yaml against the flows
it names and the work pools' job-variable schemas. Cross-file facts (ports, names,
Secrets) are checked too, since no schema sees them.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import prefect
import prefect.engine
import pytest
import yaml
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema

from workers.warm import WarmWorker

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.37"
POOL_TEMPLATE = K8S / "work-pool-template.json"
PLACEHOLDER = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s_resources() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_yaml_documents(path):
            if doc.get("kind") != "Kustomization":
                found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_resources() if doc["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    [resource] = [doc for doc in by_kind(kind) if doc["metadata"]["name"] == name]
    return resource


def env_values(container: dict[str, Any]) -> dict[str, str | None]:
    return {item["name"]: item.get("value") for item in container["env"]}


# --- Kubernetes --------------------------------------------------------------------


@pytest.mark.parametrize(("name", "resource"), k8s_resources(), ids=lambda v: str(v)[:60])
def test_kubernetes_resources_match_the_kubernetes_schema(
    name: str, resource: dict[str, Any]
) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_kubernetes_validation_is_not_vacuous() -> None:
    deployment = named("Deployment", "video-processor-sensor")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_sensor_probes_service_and_secret_fit_together() -> None:
    deployment = named("Deployment", "video-processor-sensor")
    [service] = by_kind("Service")
    accounts = {doc["metadata"]["name"] for doc in by_kind("ServiceAccount")}
    [secret] = by_kind("Secret")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = env_values(container)
    [port] = container["ports"]

    assert env["SENSOR_METRICS_PORT"] == str(port["containerPort"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert service["spec"]["selector"].items() <= deployment["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    assert pod["serviceAccountName"] in accounts
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert {"secretRef": {"name": secret["metadata"]["name"]}} in container["envFrom"]
    # The heartbeat lives on a writable volume (the root filesystem is read-only).
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    heartbeat = env["SENSOR_HEARTBEAT_FILE"]
    assert heartbeat is not None and str(Path(heartbeat).parent) in mounts


def test_warm_worker_serves_its_pool_with_prefect_healthcheck_probes_and_drains() -> None:
    deployment = named("Deployment", "video-processor-warm-worker")
    sensor = named("Deployment", "video-processor-sensor")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = env_values(container)
    args = container["args"]
    [port] = container["ports"]

    assert container["command"] == ["prefect"]
    assert args[:2] == ["worker", "start"]
    assert args[args.index("--pool") + 1] == "video-warm"
    assert args[args.index("--type") + 1] == "warm"
    assert args[args.index("--install-policy") + 1] == "never"
    # `--with-healthcheck` serves /health on PREFECT_WORKER_WEBSERVER_HOST:PORT.
    assert "--with-healthcheck" in args
    assert env["PREFECT_WORKER_WEBSERVER_HOST"] == "0.0.0.0"
    assert env["PREFECT_WORKER_WEBSERVER_PORT"] == str(port["containerPort"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": port["name"]}
    # The pod outlives the drain by 30 s, to report and exit before SIGKILL.
    drain = int(env["WARM_WORKER_DRAIN_SECONDS"] or 0)
    assert drain == 600
    assert pod["terminationGracePeriodSeconds"] == drain + 30
    assert int(env["WARM_WORKER_MAX_CONCURRENT_RUNS"] or 0) >= 1
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["serviceAccountName"] in {
        doc["metadata"]["name"] for doc in by_kind("ServiceAccount")
    }
    assert container["image"] == sensor["spec"]["template"]["spec"]["containers"][0]["image"]
    assert container["envFrom"] == [
        {"secretRef": {"name": by_kind("Secret")[0]["metadata"]["name"]}}
    ]
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {env["HOME"], "/tmp"} <= mounts
    # `deploy --all` needs the pool to exist; prefect.yaml's header says how to create it.
    assert "prefect work-pool create video-warm --type warm" in (ROOT / "prefect.yaml").read_text()


def test_the_disruption_budget_covers_the_warm_workers_only_and_leaves_some_up() -> None:
    budget = named("PodDisruptionBudget", "video-processor-warm-worker")
    selector = budget["spec"]["selector"]["matchLabels"]
    pods = {
        doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["labels"]
        for doc in by_kind("Deployment")
    }
    covered = {name for name, labels in pods.items() if selector.items() <= labels.items()}
    assert covered == {"video-processor-warm-worker"}
    worker = named("Deployment", "video-processor-warm-worker")
    assert selector == worker["spec"]["selector"]["matchLabels"]
    assert 1 <= budget["spec"]["maxUnavailable"] < worker["spec"]["replicas"]


def test_kustomization_lists_every_resource_but_the_example_secret() -> None:
    [kustomization] = load_yaml_documents(K8S / "kustomization.yaml")
    expected = {
        path.name
        for path in K8S.glob("*.yaml")
        if path.name not in {"kustomization.yaml", "secret.example.yaml"}
    }
    assert set(kustomization["resources"]) == expected


# --- docker compose ----------------------------------------------------------------


def compose_schema() -> dict[str, Any]:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return dict(json.loads(schema_file.read_text()))


def compose_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [error.message for error in validator.iter_errors(document)]


def test_compose_file_matches_the_compose_spec() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose_errors(compose) == []
    assert compose_errors({**compose, "services": {"x": {"imagee": "typo"}}}) != []


def test_compose_services_depend_on_services_that_exist_and_profiles_are_optional() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    always = {name for name, service in services.items() if not service.get("profiles")}
    assert {"postgres", "prefect-server", "worker", "sensor"} <= always
    assert {"moto", "fake-clova", "fake-anthropic", "backend"} <= {
        name for name, service in services.items() if "emulators" in service.get("profiles", [])
    }
    assert "postgresql+asyncpg://" in str(services["prefect-server"]["environment"])


def test_compose_publishes_on_loopback_and_every_client_authenticates() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    published = [(name, port) for name, s in services.items() for port in s.get("ports", [])]
    assert published and all(
        port.startswith("${PUBLISH_ADDRESS:-127.0.0.1}:") for _, port in published
    )
    required = services["prefect-server"]["environment"]["PREFECT_SERVER_API_AUTH_STRING"]
    assert required.startswith("${PREFECT_API_AUTH_STRING:?")  # compose refuses to start without
    clients = {name: s for name, s in services.items() if s.get("image", "").startswith("ai-")}
    assert {"setup", "worker", "sensor", "fake-clova"} <= set(clients)
    for name, service in clients.items():
        assert service["environment"]["PREFECT_API_AUTH_STRING"] == required, name


def test_compose_services_use_the_dockerfiles_two_targets() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.M))
    targets = {service["build"]["target"] for service in services.values() if "build" in service}
    assert targets == {"cloud", "${WORKER_TARGET:-full}"}
    assert {"cloud", "full"} <= stages
    assert services["sensor"]["build"]["target"] == "cloud"


def test_compose_deploys_what_the_sensor_routes_to_and_a_worker_polls_each_pool() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    setup = " ".join(services["setup"]["command"])
    named = {deployment["name"]: deployment for deployment in deployments()}
    polled = {
        service["command"][service["command"].index("--pool") + 1]
        for service in services.values()
        if service.get("command", [])[:3] == ["prefect", "worker", "start"]
    }
    for deployment in ("process-video-warm", "process-video-local"):
        assert f"--name {deployment}" in setup
        assert named[deployment]["work_pool"]["name"] in polled
    assert setup.index("deploy") < setup.index("operations.bootstrap")  # automations name them


def test_the_image_installs_and_copies_every_package_of_the_product() -> None:
    """A package left out of pyproject's list or the build context breaks only the image."""
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.removesuffix("*") for pattern in include} == packages
    context = (ROOT / ".dockerignore").read_text().splitlines()
    assert packages <= {line.removeprefix("!") for line in context if line.startswith("!")}


# --- prefect.yaml --------------------------------------------------------------------


def prefect_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "prefect.yaml").read_text()))


def deployments() -> list[dict[str, Any]]:
    return list(prefect_yaml()["deployments"])


def process_pool_variables() -> dict[str, Any]:
    metadata = (
        Path(prefect.__file__).parent
        / "server/api/collections_data/views/aggregate-worker-metadata.json"
    )
    template = json.loads(metadata.read_text())["prefect"]["process"]
    return dict(template["default_base_job_configuration"]["variables"])


POOL_VARIABLES = {
    "video-warm": lambda: WarmWorker.get_default_base_job_template()["variables"],
    "local-process": process_pool_variables,
    "video-k8s": lambda: json.loads(POOL_TEMPLATE.read_text())["variables"],
}


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["name"])
def test_every_deployment_entrypoint_resolves_to_a_flow_and_its_parameters_fit(
    deployment: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    flow: Flow[..., Any] = load_flow_from_entrypoint(deployment["entrypoint"])
    schema = parameter_schema(flow).model_dump()
    given = deployment.get("parameters", {})
    assert set(given) <= set(schema["properties"])
    # Required parameters without a default (process-video's `job`) come with each run.
    jsonschema.validate(given, {**schema, "required": []})


@pytest.mark.parametrize("deployment", deployments(), ids=lambda d: d["name"])
def test_every_deployment_has_a_known_pool_valid_job_variables_and_a_concurrency_limit(
    deployment: dict[str, Any],
) -> None:
    pool = deployment["work_pool"]["name"]
    assert pool in POOL_VARIABLES, f"unknown work pool {pool}"
    variables_schema = POOL_VARIABLES[pool]()
    job_variables = deployment["work_pool"].get("job_variables", {})
    assert set(job_variables) <= set(variables_schema["properties"])
    jsonschema.validate(job_variables, variables_schema)
    assert deployment["concurrency_limit"]["limit"] >= 1


def test_the_deployments_the_issue_asks_for() -> None:
    named = {deployment["name"]: deployment for deployment in deployments()}
    assert {"process-video-local", "process-video-k8s", "backfill"} <= set(named)
    k8s = named["process-video-k8s"]["work_pool"]["job_variables"]
    assert {"image", "namespace", "cpu_request", "memory_limit", "env_from"} <= set(k8s)
    secrets = {ref["secretRef"]["name"] for ref in k8s["env_from"]}
    [secret] = by_kind("Secret")
    assert secret["metadata"]["name"] in secrets
    schedules = named["backfill"]["schedules"]
    assert schedules and all(schedule["active"] is False for schedule in schedules)
    assert named["backfill"]["work_pool"]["name"] == "local-process"


def test_pool_template_defines_every_variable_it_uses() -> None:
    template = json.loads(POOL_TEMPLATE.read_text())
    used = set(PLACEHOLDER.findall(json.dumps(template["job_configuration"])))
    assert used <= set(template["variables"]["properties"])
    assert "env_from" in used


def test_helm_values_point_the_worker_at_the_k8s_pool() -> None:
    """The chart's values schema ships in no registry package; check what the files share."""
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "prefect-worker-values.yaml").read_text())
    worker = values["worker"]
    named = {deployment["name"]: deployment for deployment in deployments()}
    assert worker["config"]["workPool"] == named["process-video-k8s"]["work_pool"]["name"]
    assert worker["config"]["type"] == "kubernetes"
    assert worker["apiConfig"] in {"cloud", "selfHostedServer", "selfHosted", "server"}
    assert worker["image"]["prefectTag"].startswith(f"{prefect_yaml()['prefect-version']}-")
    assert worker["config"]["baseJobTemplate"]["existingConfigMapName"]
    assert worker["resources"]["requests"] and worker["resources"]["limits"]


def test_flow_run_pods_run_one_interpreter_the_engine_module() -> None:
    """Without the `prefect flow-run execute` supervisor: the image runs the engine directly."""
    template = json.loads(POOL_TEMPLATE.read_text())
    command = template["variables"]["properties"]["command"]["default"].split()
    assert command == ["python", "-m", "prefect.engine"]
    assert "__main__" in Path(prefect.engine.__file__).read_text()
    named = {deployment["name"]: deployment for deployment in deployments()}
    assert "command" not in named["process-video-k8s"]["work_pool"]["job_variables"]
