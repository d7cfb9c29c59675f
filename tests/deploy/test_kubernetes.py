"""The Kubernetes manifests (deploy/kubernetes/) render, validate and match the Docker build.

No cluster runs here. `kubectl kustomize` renders every kustomization; kubernetes-validate
checks each object against the schemas of one Kubernetes release; the KServe objects are
walked along the kserve SDK's generated model classes, their Kubernetes-typed parts (containers,
volumes, securityContext, metadata) checked by kubernetes-validate inside a synthetic Pod;
and the manifests are compared with what Docker/ builds and runs: images, commands, user,
probes, environment variables and mounts. The Ingress and the ingress-nginx ConfigMap patch
carry the limits of the Compose classroom profile's nginx (Docker/nginx/classroom.conf).
"""

import copy
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import kserve
import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient
from support import REPO_ROOT, nginx_conf

from app.core.config import Settings
from app.main import create_app
from penguin_contract import report_json_path

DEPLOY_DIR = REPO_ROOT / "deploy" / "kubernetes"
DOCKER_DIR = REPO_ROOT / "Docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
KUBERNETES_DOCS = REPO_ROOT / "docs" / "kubernetes.md"
ENV_EXAMPLE = DOCKER_DIR / ".env.example"
# A merge patch for the ingress-nginx controller's ConfigMap, outside any kustomization.
CONTROLLER_CONFIG = DEPLOY_DIR / "ingress-nginx" / "controller-config.yaml"
# The newest release kubernetes-validate 1.37 ships schemas for.
KUBERNETES_VERSION = "1.37"
KUSTOMIZATIONS = ("base", "overlays/local", "kserve")
PLAIN_KUSTOMIZATIONS = ("base", "overlays/local")
KSERVE_GROUP = "serving.kserve.io"
# The names the manifests give the images Docker/Dockerfile.* build.
IMAGE_DOCKERFILES = {
    "penguin-classifier-api": "Dockerfile.api",
    "penguin-classifier-jupyter": "Dockerfile.jupyter",
}
API_DEPLOYMENT, JUPYTER_DEPLOYMENT, TRAIN_JOB = "penguin-api", "penguin-jupyter", "penguin-train"
# Read by other code than Settings: the Kubernetes downward API and prometheus_client.
API_ENV_BEYOND_SETTINGS = {"POD_NAME", "PROMETHEUS_MULTIPROC_DIR"}
PENGUIN_UID = 1000
POD_KINDS = ("Deployment", "Job")


# ---------------------------------------------------------------- rendering


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is not installed, so the manifests in deploy/kubernetes cannot be rendered: "
            "install kubectl (it bundles kustomize); .ci/run checks that it is present"
        )
    return path


@cache
def render(kustomization: str) -> tuple[dict, ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(DEPLOY_DIR / kustomization)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {kustomization} failed:\n{result.stderr}")
    return tuple(document for document in yaml.safe_load_all(result.stdout) if document)


def objects(kustomization: str, kind: str) -> list[dict]:
    return [obj for obj in render(kustomization) if obj["kind"] == kind]


def find(kustomization: str, kind: str, name: str) -> dict:
    matches = [obj for obj in objects(kustomization, kind) if obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kustomization}: expected one {kind}/{name}, got {len(matches)}"
    return matches[0]


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def container(obj: dict, name: str | None = None) -> dict:
    containers = pod_spec(obj)["containers"]
    if name is None:
        assert len(containers) == 1, f"{obj['metadata']['name']}: expected one container"
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def all_containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def pod_templates(kustomization: str) -> list[tuple[str, dict]]:
    return [
        (f"{obj['kind']}/{obj['metadata']['name']}", pod_spec(obj))
        for obj in render(kustomization)
        if obj["kind"] in POD_KINDS
    ]


def env_of(c: dict) -> dict[str, dict]:
    return {variable["name"]: variable for variable in c.get("env", [])}


def env_values(c: dict) -> dict[str, str]:
    return {name: var["value"] for name, var in env_of(c).items() if "value" in var}


def mounts(c: dict) -> dict[str, dict]:
    return {mount["mountPath"]: mount for mount in c.get("volumeMounts", [])}


def volume_for(spec: dict, c: dict, mount_path: str) -> dict:
    name = mounts(c)[mount_path]["name"]
    return next(volume for volume in spec["volumes"] if volume["name"] == name)


def claim_at(obj: dict, mount_path: str, container_name: str | None = None) -> str:
    spec = pod_spec(obj)
    volume = volume_for(spec, container(obj, container_name), mount_path)
    return volume["persistentVolumeClaim"]["claimName"]


def image_name(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


# ---------------------------------------------------------------- Docker/ as the reference


@cache
def dockerfile(name: str) -> tuple[tuple[str, str], ...]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (DOCKER_DIR / name).read_text()
    logical = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    pairs = []
    for line in logical.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            pairs.append((instruction.upper(), arguments.strip()))
    return tuple(pairs)


def dockerfile_args(name: str, instruction: str) -> list[str]:
    return [arguments for found, arguments in dockerfile(name) if found == instruction]


def dockerfile_command(name: str) -> list[str]:
    """The exec-form CMD (the image has no ENTRYPOINT, so it is the whole command)."""
    assert not dockerfile_args(name, "ENTRYPOINT"), f"{name} has an ENTRYPOINT: compare it too"
    return json.loads(dockerfile_args(name, "CMD")[-1])


def dockerfile_env(name: str) -> dict[str, str]:
    env = {}
    for arguments in dockerfile_args(name, "ENV"):
        env.update(pair.split("=", 1) for pair in shlex.split(arguments))
    return env


def dockerfile_uid(name: str) -> int:
    user = dockerfile_args(name, "USER")[-1]
    useradd = next(a for a in dockerfile_args(name, "RUN") if "useradd" in a and user in a)
    return int(re.search(r"--uid (\d+)", useradd).group(1))


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_default(value: str) -> str:
    """`${NAME:-default}` -> default; a plain value stays as it is."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", str(value))
    return match.group(1) if match else str(value)


def compose_image(service: str) -> str:
    """The image `docker compose -f Docker/docker-compose.yml build` tags for ``service``."""
    definition = compose()["services"][service]
    if "image" in definition:
        return definition["image"]
    project = compose().get("name") or COMPOSE_FILE.parent.name
    project = re.sub(r"[^a-z0-9_-]", "", project.lower())
    return f"{project}-{service}:latest"


def compose_mounts(service: str) -> dict[str, bool]:
    """Container path -> read-only, for the service's volumes."""
    result = {}
    for volume in compose()["services"][service]["volumes"]:
        parts = volume.split(":")
        result[parts[1]] = len(parts) > 2 and "ro" in parts[2].split(",")
    return result


def compose_healthcheck(service: str) -> dict:
    check = compose()["services"][service]["healthcheck"]
    url = urlparse(check["test"][-1])

    def seconds(duration: str) -> int:
        return int(duration.removesuffix("s"))

    return {
        "path": url.path,
        "port": url.port,
        "periodSeconds": seconds(check["interval"]),
        "timeoutSeconds": seconds(check["timeout"]),
        "failureThreshold": check["retries"],
    }


def bootstrap_command() -> list[str]:
    """How Docker/start-jupyter.sh runs the first-start training."""
    script = (DOCKER_DIR / "start-jupyter.sh").read_text()
    match = re.search(r"\bpython\s+(\S*bootstrap_models\.py)", script)
    assert match, "start-jupyter.sh no longer runs bootstrap_models.py"
    return ["python", match.group(1)]


def project_version() -> str:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


# ---------------------------------------------------------------- rendering and schemas


def test_every_kustomization_is_tested():
    found = {
        str(path.parent.relative_to(DEPLOY_DIR)) for path in DEPLOY_DIR.rglob("kustomization.yaml")
    }
    assert found == set(KUSTOMIZATIONS)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kustomization_renders(kustomization):
    rendered = render(kustomization)
    assert rendered, f"{kustomization} renders nothing"
    for obj in rendered:
        assert {"apiVersion", "kind", "metadata"} <= obj.keys()
        assert obj["metadata"]["name"]


def kubernetes_errors(obj: dict) -> list[str]:
    try:
        used = kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = "/".join(str(part) for part in error.path)
        return [f"{obj['kind']}/{obj['metadata'].get('name')}: {path}: {error.message}"]
    # validate() falls back to the newest older release it has; this one must be shipped.
    assert used == KUBERNETES_VERSION, f"kubernetes-validate used the {used} schemas"
    return []


@pytest.mark.parametrize("kustomization", PLAIN_KUSTOMIZATIONS)
def test_objects_validate_against_the_kubernetes_schemas(kustomization):
    errors = [error for obj in render(kustomization) for error in kubernetes_errors(obj)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("kustomization", PLAIN_KUSTOMIZATIONS)
def test_base_and_overlays_need_no_custom_resources(kustomization):
    groups = {obj["apiVersion"].split("/")[0] for obj in render(kustomization)}
    assert not any(group.endswith(KSERVE_GROUP) for group in groups)


# A Pod needs a container; where a KServe object gives only pod-level parts, this one stands in.
PLACEHOLDER_CONTAINER = {"name": "placeholder", "image": "placeholder"}
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "datetime": str}


def kserve_class(type_name: str) -> type | None:
    """One of the KServe SDK's generated model classes (kserve.V1beta1InferenceService...)."""
    found = getattr(kserve, type_name, None)
    return found if isinstance(found, type) and hasattr(found, "attribute_map") else None


def element_type(type_name: str) -> str:
    """`list[X]` and `dict(str, X)` -> X, as the SDK's openapi_types spell them."""
    match = re.fullmatch(r"list\[(.+)\]|dict\(str, (.+)\)", type_name)
    return element_type(match.group(1) or match.group(2)) if match else type_name


def is_core_type(type_name: str) -> bool:
    """A Kubernetes type (V1Container, V1ObjectMeta...): not KServe's, not a primitive."""
    element = element_type(type_name)
    return element not in {*PRIMITIVES, "object"} and kserve_class(element) is None


class KServeCheck:
    """Walks a KServe object along the SDK's classes.

    Unknown fields, wrong primitive types and the required fields the classes' constructors
    enforce are errors; the Kubernetes-typed parts met on the way are kept, with their owner,
    for kubernetes-validate.
    """

    def __init__(self):
        self.errors: list[str] = []
        self.core_parts: list[tuple[str, bool, dict]] = []

    def value(self, value: object, type_name: str, path: str) -> None:
        if type_name == "object":
            return
        items = re.fullmatch(r"list\[(.+)\]", type_name)
        entries = re.fullmatch(r"dict\(str, (.+)\)", type_name)
        if items or entries:
            expected = list if items else dict
            if not isinstance(value, expected):
                self.errors.append(f"{path}: {value!r} is not a {expected.__name__}")
                return
            pairs = enumerate(value) if items else value.items()
            for key, item in pairs:
                self.value(item, (items or entries).group(1), f"{path}/{key}")
        elif type_name in PRIMITIVES:
            wrong_bool = isinstance(value, bool) and type_name != "bool"
            if wrong_bool or not isinstance(value, PRIMITIVES[type_name]):
                self.errors.append(f"{path}: {value!r} is not {type_name}")
        else:
            self.model(value, kserve_class(type_name), path)

    def model(self, value: object, cls: type, path: str) -> None:
        if not isinstance(value, dict):
            self.errors.append(f"{path}: {value!r} is not a {cls.__name__} object")
            return
        attributes = {key: attribute for attribute, key in cls.attribute_map.items()}
        for key in value.keys() - attributes.keys():
            self.errors.append(f"{path}/{key}: {cls.__name__} has no such field")
        known = {key: item for key, item in value.items() if key in attributes}
        try:
            cls(**{attributes[key]: item for key, item in known.items()})
        except ValueError as error:
            self.errors.append(f"{path}: {error}")
        core = {}
        for key, item in known.items():
            type_name = cls.openapi_types[attributes[key]]
            if is_core_type(type_name):
                core[key] = item
            else:
                self.value(item, type_name, f"{path}/{key}")
        if core:
            # A class with `containers` inlines a PodSpec (ServingRuntimeSpec, PredictorSpec);
            # one without inlines a Container (ModelSpec).
            self.core_parts.append((path, "containers" in attributes, core))


def synthetic_pod(core: dict, pod_like: bool) -> dict:
    """A Pod carrying a KServe object's Kubernetes-typed parts where a Pod has them."""
    core = dict(core)
    metadata = core.pop("metadata", {"name": "check"})
    if pod_like:
        spec = {"containers": [PLACEHOLDER_CONTAINER], **core}
    else:
        spec = {"containers": [{**PLACEHOLDER_CONTAINER, **core}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def kserve_check(obj: dict) -> KServeCheck:
    group, version = obj["apiVersion"].split("/")
    assert group == KSERVE_GROUP, obj["apiVersion"]
    cls = kserve_class(version.capitalize() + obj["kind"])
    assert cls is not None, f"the kserve SDK has no class for {obj['apiVersion']} {obj['kind']}"
    check = KServeCheck()
    check.model(obj, cls, obj["kind"])
    return check


def kserve_errors(obj: dict) -> list[str]:
    check = kserve_check(obj)
    errors = list(check.errors)
    for path, pod_like, core in check.core_parts:
        pod_errors = kubernetes_errors(synthetic_pod(core, pod_like))
        errors += [f"{path}, checked as a Pod: {error}" for error in pod_errors]
    return errors


def test_kserve_objects_match_the_kserve_sdk_and_the_kubernetes_schemas():
    rendered = render("kserve")
    assert {obj["kind"] for obj in rendered} == {"ServingRuntime", "InferenceService"}
    errors = [error for obj in rendered for error in kserve_errors(obj)]
    assert not errors, "\n".join(errors)


def test_kserve_check_reaches_the_pod_parts():
    """The runtime's containers and volumes and the predictor's securityContext are checked."""
    parts = {}
    for obj in render("kserve"):
        parts |= {path: set(core) for path, _, core in kserve_check(obj).core_parts}
    assert parts == {
        "ServingRuntime": {"metadata"},
        "ServingRuntime/spec": {"containers", "volumes"},
        "InferenceService": {"metadata"},
        "InferenceService/spec/predictor": {"securityContext"},
    }


def rename(fields: dict, old: str, new: str) -> None:
    fields[new] = fields.pop(old)


BREAKAGES = {
    # kind, how to break its spec, what the error must name
    "misspelled KServe field": (
        "InferenceService",
        lambda spec: rename(spec["predictor"]["model"], "storageUri", "storageURI"),
        "storageURI",
    ),
    "misspelled container field": (
        "ServingRuntime",
        lambda spec: rename(spec["containers"][0], "readinessProbe", "readinessprobe"),
        "readinessprobe",
    ),
    "text for a KServe integer": (
        "InferenceService",
        lambda spec: spec["predictor"].update(minReplicas="2"),
        "minReplicas",
    ),
    "missing required field": ("ServingRuntime", lambda spec: spec.pop("containers"), "containers"),
    "text for a pod integer": (
        "InferenceService",
        lambda spec: spec["predictor"]["securityContext"].update(runAsUser="1000"),
        "runAsUser",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_kserve_check_rejects_a_broken_object(breakage):
    kind, break_spec, named = BREAKAGES[breakage]
    (obj,) = objects("kserve", kind)
    broken = copy.deepcopy(obj)
    break_spec(broken["spec"])
    errors = kserve_errors(broken)
    assert any(named in error for error in errors), errors


def test_kubernetes_validation_rejects_a_misspelled_field():
    api = copy.deepcopy(find("base", "Deployment", API_DEPLOYMENT))
    container(api)["readinessprobe"] = container(api).pop("readinessProbe")
    assert kubernetes_errors(api)


# ---------------------------------------------------------------- images and commands


@pytest.mark.parametrize("kustomization", PLAIN_KUSTOMIZATIONS)
def test_every_image_is_one_the_dockerfiles_build(kustomization):
    overlay_names = {compose_image("api"): "Dockerfile.api"}
    overlay_names[compose_image("jupyter")] = "Dockerfile.jupyter"
    for where, spec in pod_templates(kustomization):
        for c in all_containers(spec):
            known = c["image"] in overlay_names or image_name(c["image"]) in IMAGE_DOCKERFILES
            assert known, f"{where}: {c['image']} is not built by Docker/"


def test_base_images_are_tagged_with_the_project_version():
    for where, spec in pod_templates("base"):
        for c in all_containers(spec):
            assert c["image"].endswith(f":{project_version()}"), f"{where}: {c['image']}"


def test_compose_builds_the_dockerfiles_the_manifests_name():
    for service, dockerfile_name in (("api", "Dockerfile.api"), ("jupyter", "Dockerfile.jupyter")):
        build = compose()["services"][service]["build"]
        assert Path(build["dockerfile"]).name == dockerfile_name


def test_local_overlay_runs_the_images_compose_builds_without_pulling():
    expected = {
        API_DEPLOYMENT: compose_image("api"),
        JUPYTER_DEPLOYMENT: compose_image("jupyter"),
        TRAIN_JOB: compose_image("jupyter"),
    }
    for where, spec in pod_templates("overlays/local"):
        name = where.split("/")[1]
        for c in all_containers(spec):
            assert c["image"] == expected[name], f"{where}/{c['name']}"
            assert c["imagePullPolicy"] == "Never", f"{where}/{c['name']}: from `kind load`"


@pytest.mark.parametrize("kustomization", PLAIN_KUSTOMIZATIONS)
def test_commands_are_the_ones_the_images_run(kustomization):
    api = container(find(kustomization, "Deployment", API_DEPLOYMENT))
    assert api["command"] == dockerfile_command("Dockerfile.api")
    jupyter = container(find(kustomization, "Deployment", JUPYTER_DEPLOYMENT))
    assert jupyter["command"] == dockerfile_command("Dockerfile.jupyter")
    train = container(find(kustomization, "Job", TRAIN_JOB))
    assert train["command"] == bootstrap_command()
    for c in (api, jupyter, train):
        assert "workingDir" not in c, "the image's WORKDIR decides where `python -m` imports from"


def test_the_training_job_runs_the_script_the_jupyter_image_contains():
    script = bootstrap_command()[1]
    copies = dockerfile_args("Dockerfile.jupyter", "COPY")
    assert any(
        "Docker/bootstrap_models.py" in c and script.startswith(c.split()[-1]) for c in copies
    )


def test_kserve_runtime_runs_the_api_image_and_command():
    (runtime,) = objects("kserve", "ServingRuntime")
    (c,) = runtime["spec"]["containers"]
    assert image_name(c["image"]) == "penguin-classifier-api"
    assert c["image"].endswith(f":{project_version()}")
    assert c["command"] == dockerfile_command("Dockerfile.api")


def test_inference_service_uses_the_runtime_over_v2():
    (runtime,) = objects("kserve", "ServingRuntime")
    (service,) = objects("kserve", "InferenceService")
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2"
    assert "v2" in runtime["spec"]["protocolVersions"]
    formats = {(f["name"], f.get("version")) for f in runtime["spec"]["supportedModelFormats"]}
    assert (model["modelFormat"]["name"], model["modelFormat"].get("version")) in formats
    base_claims = {pvc["metadata"]["name"] for pvc in objects("base", "PersistentVolumeClaim")}
    assert model["storageUri"].removeprefix("pvc://").split("/")[0] in base_claims
    assert service["metadata"]["namespace"] == runtime["metadata"]["namespace"]
    assert runtime["metadata"]["namespace"] == objects("base", "Namespace")[0]["metadata"]["name"]


# ---------------------------------------------------------------- probes, environment, mounts


def probe_summary(probe: dict) -> dict:
    return {
        "path": probe["httpGet"]["path"],
        "periodSeconds": probe["periodSeconds"],
        "timeoutSeconds": probe["timeoutSeconds"],
        "failureThreshold": probe["failureThreshold"],
    }


def container_port(c: dict, port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in c["ports"] if p["name"] == port)


@pytest.mark.parametrize(
    ("deployment", "service"), [(API_DEPLOYMENT, "api"), (JUPYTER_DEPLOYMENT, "jupyter")]
)
def test_liveness_probe_is_the_compose_healthcheck(deployment, service):
    c = container(find("base", "Deployment", deployment))
    expected = compose_healthcheck(service)
    assert container_port(c, c["livenessProbe"]["httpGet"]["port"]) == expected.pop("port")
    assert probe_summary(c["livenessProbe"]) == expected


def probe_statuses(paths: set[str], root: Path) -> dict[str, int]:
    """What the API answers on ``paths`` with empty, writable models and results folders."""
    (root / "models").mkdir()
    (root / "results").mkdir()
    settings = Settings(
        models_dir=root / "models", report_path=root / "report.pkl", results_dir=root / "results"
    )
    with TestClient(create_app(settings)) as client:
        return {path: client.get(path).status_code for path in paths}


def test_api_probes_answer_on_the_app(tmp_path):
    c = container(find("base", "Deployment", API_DEPLOYMENT))
    probes = {c[probe]["httpGet"]["path"] for probe in ("startupProbe", "livenessProbe")}
    assert probes == {"/health"}
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert probe_statuses({"/health", "/ready"}, tmp_path) == {"/health": 200, "/ready": 200}
    exposed = int(dockerfile_args("Dockerfile.api", "EXPOSE")[-1])
    assert container_port(c, c["readinessProbe"]["httpGet"]["port"]) == exposed
    assert int(env_values(c)["API_PORT"]) == exposed


def test_kserve_runtime_probes_use_the_apps_health_routes():
    (runtime,) = objects("kserve", "ServingRuntime")
    (c,) = runtime["spec"]["containers"]
    port = int(env_values(c)["API_PORT"])
    assert c["ports"][0]["containerPort"] == port
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": port}


# Where the cluster differs from Compose on purpose: a shared server unpickles nothing.
K8S_ON_PURPOSE = {"ALLOW_PICKLE": "false"}


def test_api_environment_matches_compose_and_the_dockerfile():
    c = container(find("base", "Deployment", API_DEPLOYMENT))
    values = env_values(c)
    for name, value in compose()["services"]["api"]["environment"].items():
        expected = K8S_ON_PURPOSE.get(name, compose_default(value))
        assert values[name] == expected, name
    for name, value in dockerfile_env("Dockerfile.api").items():
        if name in values:
            assert values[name] == value, name


@pytest.mark.parametrize("kustomization", [*PLAIN_KUSTOMIZATIONS, "kserve"])
def test_api_sets_only_variables_something_reads(kustomization):
    aliases = {field.alias for field in Settings.model_fields.values()}
    for c in api_containers(kustomization):
        unknown = set(env_of(c)) - aliases - API_ENV_BEYOND_SETTINGS
        assert not unknown, f"{kustomization}: nothing reads {sorted(unknown)}"


def api_containers(kustomization: str) -> list[dict]:
    if kustomization == "kserve":
        return objects("kserve", "ServingRuntime")[0]["spec"]["containers"]
    return [container(find(kustomization, "Deployment", API_DEPLOYMENT))]


def test_jupyter_environment_matches_compose():
    jupyter = container(find("base", "Deployment", JUPYTER_DEPLOYMENT))
    train = container(find("base", "Job", TRAIN_JOB))
    compose_env = compose()["services"]["jupyter"]["environment"]
    assert set(compose_env) <= set(env_of(jupyter))
    # The Job trains on first start; Jupyter Lab must not race it into the same volume.
    assert env_values(jupyter)["BOOTSTRAP_MODELS"] == "0"
    assert env_values(train)["BOOTSTRAP_MODELS"] == compose_default(compose_env["BOOTSTRAP_MODELS"])
    image_env = dockerfile_env("Dockerfile.jupyter")
    for c in (jupyter, train):
        for name, value in env_values(c).items():
            if name in image_env:
                assert value == image_env[name], name


def test_api_mounts_match_compose():
    api = find("base", "Deployment", API_DEPLOYMENT)
    c = container(api)
    for path, read_only in compose_mounts("api").items():
        assert mounts(c)[path].get("readOnly", False) == read_only, path
    for tmpfs in compose()["services"]["api"]["tmpfs"]:
        path = tmpfs.split(":")[0]
        assert volume_for(pod_spec(api), c, path)["emptyDir"]["medium"] == "Memory"


def test_jupyter_mounts_match_compose():
    c = container(find("base", "Deployment", JUPYTER_DEPLOYMENT))
    for path, read_only in compose_mounts("jupyter").items():
        assert mounts(c)[path].get("readOnly", False) == read_only, path


def test_job_and_jupyter_write_the_volumes_the_api_reads():
    api = find("base", "Deployment", API_DEPLOYMENT)
    jupyter = find("base", "Deployment", JUPYTER_DEPLOYMENT)
    train = find("base", "Job", TRAIN_JOB)
    for path in ("/app/models", "/app/report"):
        assert claim_at(train, path) == claim_at(api, path) == claim_at(jupyter, path), path
        assert not mounts(container(train)).get(path, {}).get("readOnly", False)
    assert claim_at(jupyter, "/app/results") == claim_at(api, "/app/results")
    assert env_values(container(train))["MODELS_DIR"] == env_values(container(api))["MODELS_DIR"]


def test_training_kernel_can_write_its_working_directory():
    """nbclient's IPC sockets go in the notebook's folder, so it cannot be the read-only image."""
    train = find("base", "Job", TRAIN_JOB)
    c = container(train)
    notebooks = env_values(c)["NOTEBOOKS_DIR"]
    assert "emptyDir" in volume_for(pod_spec(train), c, notebooks)
    (seed,) = pod_spec(train)["initContainers"]
    seeded_into = next(iter(mounts(seed)))
    assert seed["command"][-2:] == [f"{notebooks}/.", f"{seeded_into}/"]
    assert mounts(seed)[seeded_into]["name"] == mounts(c)[notebooks]["name"]


# ---------------------------------------------------------------- scaling and storage


def pod_labels(obj: dict) -> dict:
    return obj["spec"]["template"]["metadata"]["labels"]


def test_api_scales_out_safely():
    api = find("base", "Deployment", API_DEPLOYMENT)
    assert api["spec"]["replicas"] >= 2
    labels = pod_labels(api)
    (hpa,) = objects("base", "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": API_DEPLOYMENT,
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    (pdb,) = objects("base", "PodDisruptionBudget")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = find("base", "Service", API_DEPLOYMENT)
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert container_port(container(api), port["targetPort"]) == port["port"]


def test_each_api_pod_logs_predictions_to_its_own_file():
    c = container(find("base", "Deployment", API_DEPLOYMENT))
    names = [variable["name"] for variable in c["env"]]
    pod_name = env_of(c)["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert pod_name == "metadata.name"
    assert "$(POD_NAME)" in env_values(c)["PREDICTIONS_LOG_NAME"]
    # Kubernetes expands $(VAR) only for variables defined earlier in the list.
    assert names.index("POD_NAME") < names.index("PREDICTIONS_LOG_NAME")
    assert not mounts(c)[env_values(c)["RESULTS_DIR"]].get("readOnly", False)


def access_modes(kustomization: str) -> dict[str, list[str]]:
    return {
        pvc["metadata"]["name"]: pvc["spec"]["accessModes"]
        for pvc in objects(kustomization, "PersistentVolumeClaim")
    }


def test_shared_volumes_are_read_write_many_in_the_base():
    modes = access_modes("base")
    api = find("base", "Deployment", API_DEPLOYMENT)
    for path in ("/app/models", "/app/report", "/app/results"):
        assert modes[claim_at(api, path)] == ["ReadWriteMany"], path
    jupyter = find("base", "Deployment", JUPYTER_DEPLOYMENT)
    assert find("base", "Deployment", JUPYTER_DEPLOYMENT)["spec"]["strategy"]["type"] == "Recreate"
    assert modes[claim_at(jupyter, "/app/notebooks")] == ["ReadWriteOnce"]


def test_local_overlay_is_one_small_node():
    assert set(map(tuple, access_modes("overlays/local").values())) == {("ReadWriteOnce",)}
    assert find("overlays/local", "Deployment", API_DEPLOYMENT)["spec"]["replicas"] <= 2
    (hpa,) = objects("overlays/local", "HorizontalPodAutoscaler")
    assert hpa["spec"]["maxReplicas"] <= 2


@pytest.mark.parametrize("kustomization", PLAIN_KUSTOMIZATIONS)
def test_every_claim_a_pod_mounts_is_declared(kustomization):
    declared = set(access_modes(kustomization))
    for where, spec in pod_templates(kustomization):
        for volume in spec["volumes"]:
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in declared, where


# ---------------------------------------------------------------- security


def effective(spec: dict, c: dict, key: str):
    return c.get("securityContext", {}).get(key, spec.get("securityContext", {}).get(key))


def security_problems(where: str, spec: dict) -> list[str]:
    problems = []
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: mounts a service account token")
    for c in all_containers(spec):
        context = c.get("securityContext", {})
        expected = {
            "runAsNonRoot": effective(spec, c, "runAsNonRoot") is True,
            "runAsUser 1000": effective(spec, c, "runAsUser") == PENGUIN_UID,
            "no privilege escalation": context.get("allowPrivilegeEscalation") is False,
            "read-only root": context.get("readOnlyRootFilesystem") is True,
            "drops ALL": context.get("capabilities", {}).get("drop") == ["ALL"],
            "seccomp": (effective(spec, c, "seccompProfile") or {}).get("type") == "RuntimeDefault",
            "limits": {"cpu", "memory"} <= c.get("resources", {}).get("limits", {}).keys(),
            "requests": {"cpu", "memory"} <= c.get("resources", {}).get("requests", {}).keys(),
        }
        problems += [f"{where}/{c['name']}: not {name}" for name, ok in expected.items() if not ok]
    return problems


@pytest.mark.parametrize("kustomization", PLAIN_KUSTOMIZATIONS)
def test_every_pod_is_locked_down(kustomization):
    problems = [
        problem
        for where, spec in pod_templates(kustomization)
        for problem in security_problems(where, spec)
    ]
    assert not problems, "\n".join(problems)


def test_kserve_runtime_is_locked_down():
    (runtime,) = objects("kserve", "ServingRuntime")
    (service,) = objects("kserve", "InferenceService")
    spec = {**runtime["spec"], **service["spec"]["predictor"]}
    assert not security_problems("ServingRuntime", spec)


def test_images_run_as_the_uid_the_manifests_use():
    for name in IMAGE_DOCKERFILES.values():
        assert dockerfile_uid(name) == PENGUIN_UID, name


@pytest.mark.parametrize("kustomization", [*PLAIN_KUSTOMIZATIONS, "kserve"])
def test_api_reads_models_and_report_only_and_never_unpickles(kustomization):
    for c in api_containers(kustomization):
        values = env_values(c)
        assert values["ALLOW_PICKLE"] == "false"
        # With ALLOW_PICKLE=false the API reads the report's JSON twin, never REPORT_PATH itself.
        report = report_json_path(values["REPORT_PATH"])
        read_only_paths = [values["MODELS_DIR"], str(report.parent)]
        for path in read_only_paths:
            if path in mounts(c):
                assert mounts(c)[path]["readOnly"] is True, path
    if kustomization != "kserve":
        api = find(kustomization, "Deployment", API_DEPLOYMENT)
        c = container(api)
        for path in ("/app/models", "/app/report"):
            assert volume_for(pod_spec(api), c, path)["persistentVolumeClaim"]["readOnly"] is True


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_no_secret_value_is_in_the_manifests(kustomization):
    assert not objects(kustomization, "Secret")
    for obj in render(kustomization):
        for c in all_containers(pod_spec(obj)) if obj["kind"] in POD_KINDS else []:
            token = env_of(c).get("JUPYTER_TOKEN")
            if token is not None:
                assert "value" not in token and "secretKeyRef" in token["valueFrom"]
    for path in (DEPLOY_DIR / kustomization).glob("*.yaml"):
        assert "secretGenerator" not in path.read_text(), path


def test_docs_create_the_secret_the_manifests_reference():
    c = container(find("base", "Deployment", JUPYTER_DEPLOYMENT))
    reference = env_of(c)["JUPYTER_TOKEN"]["valueFrom"]["secretKeyRef"]
    docs = KUBERNETES_DOCS.read_text()
    command = f"create secret generic {reference['name']} --from-literal={reference['key']}="
    assert command in docs.replace("\\\n", "").replace("  ", " ")


# ---------------------------------------------------------------- the edge: Ingress, ingress-nginx

INGRESS_ANNOTATION = "nginx.ingress.kubernetes.io/"
# The API's old connection settings: nginx has them now (issue 18), nothing may still set them.
OLD_CONNECTION_SETTINGS = (
    "HEADER_TIMEOUT_S",
    "BODY_TIMEOUT_S",
    "SEND_TIMEOUT_S",
    "KEEP_ALIVE_S",
    "MAX_CONNECTIONS",
    "MAX_HEADER_BYTES",
)


def annotations(ingress: dict) -> dict[str, str]:
    return {
        key.removeprefix(INGRESS_ANNOTATION): value
        for key, value in ingress["metadata"].get("annotations", {}).items()
        if key.startswith(INGRESS_ANNOTATION)
    }


@pytest.mark.parametrize("kustomization", PLAIN_KUSTOMIZATIONS)
def test_the_ingress_sends_everything_to_the_api_service(kustomization):
    ingress = find(kustomization, "Ingress", API_DEPLOYMENT)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    ((rule,),) = [ingress["spec"]["rules"]]
    assert "host" not in rule
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    backend = path["backend"]["service"]
    service = find(kustomization, "Service", backend["name"])
    assert [port["name"] for port in service["spec"]["ports"]] == [backend["port"]["name"]]
    api = find(kustomization, "Deployment", API_DEPLOYMENT)
    assert service["spec"]["selector"].items() <= pod_labels(api).items()


def test_the_ingress_has_the_classroom_nginx_limits():
    """Per-Ingress annotations of ingress-nginx, one for each nginx directive they set."""
    limits = nginx_conf.limits()
    conf = nginx_conf.directives()
    given = annotations(find("base", "Ingress", API_DEPLOYMENT))
    rps, multiplier = int(given["limit-rps"]), int(given["limit-burst-multiplier"])
    number, size = conf["proxy_buffers"][0].split()

    assert int(given["limit-connections"]) == limits.connections
    assert rps == limits.requests_per_s
    assert rps * multiplier == limits.burst  # ingress-nginx: burst = limit-rps x multiplier
    assert nginx_conf.size_bytes(given["proxy-body-size"]) == limits.max_body_bytes
    assert given["proxy-request-buffering"] == given["proxy-buffering"] == "on"
    assert (given["proxy-buffers-number"], given["proxy-buffer-size"]) == (number, size)
    assert conf["proxy_buffer_size"] == [size]  # the annotation sets both sizes
    assert given["proxy-max-temp-file-size"] == nginx_conf.only("proxy_max_temp_file_size")
    for name in ("proxy-connect-timeout", "proxy-send-timeout", "proxy-read-timeout"):
        directive = name.replace("-", "_")
        assert int(given[name]) == nginx_conf.seconds(nginx_conf.only(directive)), name
    assert "nodelay" in nginx_conf.only("limit_req").split()  # as ingress-nginx renders it


def controller_configmap(tmp_path: Path) -> dict:
    """A controller ConfigMap with the patch applied as the docs say, by kubectl offline."""
    configmap = tmp_path / "ingress-nginx-controller.yaml"
    configmap.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
                "data": {"allow-snippet-annotations": "false"},
            }
        )
    )
    patch = ["--type", "merge", "--patch-file", str(CONTROLLER_CONFIG)]
    result = subprocess.run(
        [kubectl(), "patch", "--local", "-f", str(configmap), *patch, "-o", "yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_controller_configmap_patch_has_the_classroom_nginx_settings(tmp_path):
    """What ingress-nginx takes only controller-wide: the patch the docs apply."""
    limits = nginx_conf.limits()
    patched = controller_configmap(tmp_path)
    data = patched["data"]

    assert not kubernetes_errors(patched)
    assert data["allow-snippet-annotations"] == "false"  # the patch merges, keeps the rest
    assert float(data["client-header-timeout"]) == limits.header_timeout_s
    assert float(data["client-body-timeout"]) == limits.body_timeout_s
    assert float(data["keep-alive"]) == limits.keepalive_s
    number, size = data["large-client-header-buffers"].split()
    assert (int(number), nginx_conf.size_bytes(size)) == limits.header_buffers
    assert (int(data["limit-req-status-code"]), int(data["limit-conn-status-code"])) == (
        limits.status
    )
    assert nginx_conf.directives(data["http-snippet"]) == {
        "send_timeout": [nginx_conf.only("send_timeout")]
    }
    documented = f"--patch-file {CONTROLLER_CONFIG.relative_to(REPO_ROOT)}"
    assert documented in CONTROLLER_CONFIG.read_text()


def test_nginx_takes_the_bodies_the_api_takes():
    """client_max_body_size (nginx, the Ingress) is the API's MAX_BODY_BYTES."""
    assert nginx_conf.limits().max_body_bytes == Settings().max_body_bytes


def test_nothing_sets_the_apis_old_connection_settings():
    places = {
        "Docker/docker-compose.yml": COMPOSE_FILE.read_text(),
        "Docker/.env.example": ENV_EXAMPLE.read_text(),
        **{
            f"Docker/{name}": (DOCKER_DIR / name).read_text() for name in IMAGE_DOCKERFILES.values()
        },
    }
    for kustomization in KUSTOMIZATIONS:
        places[f"deploy/kubernetes/{kustomization}"] = yaml.safe_dump_all(render(kustomization))
    found = [
        f"{where}: {name}"
        for where, text in places.items()
        for name in OLD_CONNECTION_SETTINGS
        if re.search(rf"\b{name}\b", text)
    ]
    assert found == []
