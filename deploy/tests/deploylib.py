"""What the deploy checks (test_deploy.py) share: rendering the overlays,
reading the Dockerfile as an image model, resolving a container's command
line and environment, running the real binary, and the metric names a PromQL
expression reads.

Everything is found by walking deploy/: every directory under
deploy/overlays with a kustomization.yaml is an overlay, every container
whose executable the Dockerfile maps to a built binary is checked against
that binary. A new overlay (cluster mode) is checked by dropping its folder
in; a new role's binary by a COPY line in the Dockerfile.

Run with Debian's /usr/bin/python3 (python3-yaml, python3-grpcio from
scripts/install-deps.sh).
"""

import dataclasses
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import urllib.request

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
OVERLAYS = os.path.join(DEPLOY, "overlays")
TESTS = os.path.join(DEPLOY, "tests")
DOCKERFILE = os.path.join(DEPLOY, "docker", "Dockerfile")
# The build tree the checks use (ctest passes its own); the Dockerfile's
# build stages make theirs at <WORKDIR>/build.
BUILD_DIR = os.environ.get("PEAKKNN_BUILD_DIR", os.path.join(REPO, "build"))
# The toolkit that the Dockerfile's named build context "cuda" stands for.
CUDA_ROOT = os.path.realpath(os.environ.get("PEAKKNN_CUDA_ROOT", "/usr/local/cuda"))
# Whether the build tree was configured with the CUDA backend (ctest says;
# by hand: CMake's own rule, nvcc in /usr/local/cuda).
BUILD_HAS_CUDA = os.environ.get(
    "PEAKKNN_HAVE_CUDA", "ON" if os.path.exists("/usr/local/cuda/bin/nvcc") else "OFF"
).upper() in ("ON", "1", "TRUE", "YES")

WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet", "Job")


class CheckError(Exception):
    """A problem found in the manifests, the image or the binary."""


def run(argv, **kwargs):
    """Runs argv; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


# ---- Overlays ----------------------------------------------------------------


def overlays():
    """Names of deploy/overlays/* that have a kustomization.yaml."""
    return sorted(
        name
        for name in os.listdir(OVERLAYS)
        if os.path.isfile(os.path.join(OVERLAYS, name, "kustomization.yaml"))
    )


_rendered = {}


def render(overlay):
    """The objects `kubectl kustomize deploy/overlays/<overlay>` prints."""
    if overlay not in _rendered:
        if shutil.which("kubectl") is None:
            raise CheckError(
                "kubectl is not on PATH: the deploy checks render with its "
                "built-in kustomize (scripts/install-deploy-tools.sh says more)"
            )
        path = os.path.join(OVERLAYS, overlay)
        p = run(["kubectl", "kustomize", path])
        if p.returncode != 0:
            raise CheckError(f"kubectl kustomize {path} failed:\n{p.stderr}")
        _rendered[overlay] = [d for d in yaml.safe_load_all(p.stdout) if d]
    return _rendered[overlay]


def name_of(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


def find(objects, kind, name):
    for o in objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    return None


def pod_templates(objects):
    """(workload, pod spec, pod labels) of every workload object."""
    for o in objects:
        if o["kind"] in WORKLOAD_KINDS:
            template = o["spec"]["template"]
            yield o, template["spec"], template.get("metadata", {}).get("labels", {})


def selects(match_labels, labels):
    return bool(match_labels) and all(labels.get(k) == v for k, v in match_labels.items())


def rule_groups(objects):
    """(source, groups) of every PrometheusRule."""
    for o in objects:
        if o["kind"] == "PrometheusRule":
            yield name_of(o), o["spec"]["groups"]


def dashboards(objects):
    """(source, dashboard dict) of every ConfigMap the Grafana sidecar loads."""
    for o in objects:
        labels = o.get("metadata", {}).get("labels", {})
        if o["kind"] == "ConfigMap" and labels.get("grafana_dashboard") == "1":
            for key, text in o.get("data", {}).items():
                try:
                    yield f"{name_of(o)}[{key}]", json.loads(text)
                except json.JSONDecodeError as e:
                    raise CheckError(f"{name_of(o)}[{key}]: not JSON: {e}") from e


# ---- The Dockerfile as an image model -----------------------------------------


@dataclasses.dataclass
class Instruction:
    cmd: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest, continuation lines joined
    line: int


@dataclasses.dataclass
class Stage:
    name: str
    base: str  # an image reference or an earlier stage's name
    instructions: list


def parse_dockerfile(text):
    """Stages of a Dockerfile: comments dropped, continuations joined."""
    stages = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        cmd, _, args = full.partition(" ")
        cmd = cmd.upper()
        args = " ".join(args.split())
        if cmd == "FROM":
            words = args.split()
            if len(words) == 3 and words[1].upper() == "AS":
                stages.append(Stage(words[2], words[0], []))
            else:
                stages.append(Stage(f"stage{len(stages)}", words[0], []))
        elif not stages:
            if cmd != "ARG":
                raise CheckError(f"Dockerfile line {start}: {cmd} before FROM")
        else:
            stages[-1].instructions.append(Instruction(cmd, args, start))
    return stages


def _copy_parts(args):
    """(options, sources, destination) of a COPY's arguments."""
    words = shlex.split(args)
    options = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        options[key] = value
    if len(words) < 2:
        raise CheckError(f"COPY {args}: needs a source and a destination")
    return options, words[:-1], words[-1]


def _apt_packages(run_args):
    """Package names of every `apt-get install` in a RUN's shell command."""
    packages = []
    for command in re.split(r"&&|;|\|\|", run_args):
        words = command.split()
        if words[:1] == ["apt-get"] and "install" in words:
            after = words[words.index("install") + 1 :]
            packages += [w for w in after if not w.startswith("-")]
    return packages


@dataclasses.dataclass
class ImageFile:
    image_path: str
    local_path: str  # where the same file is on this machine
    line: int


@dataclasses.dataclass
class Image:
    """What a Dockerfile target contains, as far as the checks need."""

    target: str
    apt_packages: list
    files: dict  # image path -> ImageFile (COPY'd files)
    env: dict
    entrypoint: list  # exec form, [] if none
    entrypoint_is_exec_form: bool
    user: str

    def local(self, image_path):
        """The local file an image path was copied from, or None."""
        f = self.files.get(os.path.normpath(image_path))
        return f.local_path if f else None


class Dockerfile:
    """deploy/docker/Dockerfile: its stages, and for each, where a path in
    that stage's filesystem is on this machine:
      - build stages: `COPY . <dir>` puts the repository at <dir>, and
        `cmake -B build` run in WORKDIR <dir> makes <dir>/build, which is
        this machine's build tree (BUILD_DIR);
      - the named build context "cuda" is the CUDA toolkit (CUDA_ROOT)."""

    NAMED_CONTEXTS = {"cuda": CUDA_ROOT}

    def __init__(self, path=DOCKERFILE):
        with open(path) as f:
            self.stages = parse_dockerfile(f.read())
        self.by_name = {s.name: s for s in self.stages}

    def chain(self, target):
        """The stage and the stages it is FROM, oldest first."""
        if target not in self.by_name:
            raise CheckError(f"Dockerfile has no stage {target!r}")
        chain = []
        stage = self.by_name[target]
        while stage is not None:
            chain.insert(0, stage)
            stage = self.by_name.get(stage.base)
        return chain

    def source_map(self, stage_name):
        """{image directory: local directory} for paths in a stage."""
        mapping = {}
        workdir = "/"
        for stage in self.chain(stage_name):
            for ins in stage.instructions:
                if ins.cmd == "WORKDIR":
                    workdir = os.path.join(workdir, ins.args)
                elif ins.cmd == "COPY":
                    options, sources, dest = _copy_parts(ins.args)
                    if "from" not in options and sources == ["."]:
                        mapping[os.path.normpath(os.path.join(workdir, dest))] = REPO
                elif ins.cmd == "RUN" and re.search(r"cmake .*-B build\b", ins.args):
                    mapping[os.path.normpath(os.path.join(workdir, "build"))] = BUILD_DIR
        return mapping

    def local_path(self, stage_name, image_path, line):
        """Where a path of a stage's (or named context's) filesystem is here."""
        if stage_name in self.NAMED_CONTEXTS:
            return os.path.join(self.NAMED_CONTEXTS[stage_name], image_path.lstrip("/"))
        mapping = self.source_map(stage_name)
        path = os.path.normpath(image_path)
        for prefix in sorted(mapping, key=len, reverse=True):
            if path == prefix or path.startswith(prefix + "/"):
                return os.path.join(mapping[prefix], os.path.relpath(path, prefix))
        raise CheckError(
            f"Dockerfile line {line}: {image_path} in stage {stage_name} comes "
            f"from neither the repository nor the build tree (mapped: {mapping})"
        )

    def image(self, target):
        apt, files, env = [], {}, {}
        entrypoint, exec_form, user = [], False, "root"
        for stage in self.chain(target):
            for ins in stage.instructions:
                if ins.cmd == "RUN":
                    apt += _apt_packages(ins.args)
                elif ins.cmd == "ENV":
                    for word in shlex.split(ins.args):
                        key, eq, value = word.partition("=")
                        if not eq:
                            raise CheckError(f"Dockerfile line {ins.line}: write ENV as KEY=value")
                        env[key] = value
                elif ins.cmd == "USER":
                    user = ins.args
                elif ins.cmd == "ENTRYPOINT":
                    exec_form = ins.args.startswith("[")
                    entrypoint = json.loads(ins.args) if exec_form else [ins.args]
                elif ins.cmd == "COPY":
                    options, sources, dest = _copy_parts(ins.args)
                    origin = options.get("from")
                    for source in sources:
                        if origin is None:  # from the build context
                            local = os.path.join(REPO, source)
                        else:
                            local = self.local_path(origin, source, ins.line)
                        image_path = dest
                        if dest.endswith("/"):
                            image_path = os.path.join(dest, os.path.basename(source))
                        image_path = os.path.normpath(image_path)
                        files[image_path] = ImageFile(image_path, local, ins.line)
        return Image(target, apt, files, env, entrypoint, exec_form, user)


# Which Dockerfile target an image reference in the manifests is built
# from: the -gpu tag suffix is the GPU image (deploy/README.md, "Images").
IMAGE_NAME = "peakknn"


def image_target(image_ref):
    name, _, tag = image_ref.rpartition(":")
    if "/" in tag or not name:  # no tag
        name, tag = image_ref, ""
    if name.rsplit("/", 1)[-1] != IMAGE_NAME:
        return None
    return "runtime-gpu" if tag.endswith("-gpu") else "runtime"


# ---- Containers: command line and environment ----------------------------------


def _cpu_count(quantity):
    """A Kubernetes CPU quantity ("4", "500m") rounded up to whole CPUs, as
    resourceFieldRef with divisor 1 gives it."""
    text = str(quantity)
    if text.endswith("m"):
        return math.ceil(int(text[:-1]) / 1000)
    return math.ceil(float(text))


def expand_dependent(value, env):
    """$(VAR) references in an env value, command or argument, expanded as
    the kubelet does: from the variables the pod spec defines before it
    (not the image's ENV); $$ is a literal
    $; a reference to an undefined variable stays as written."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        value,
    )


def container_env(container, pod_labels, objects, image, pod_name="pod-0", namespace="default"):
    """The environment a container starts with: the image's ENV, then its
    envFrom, then env (later wins, as the kubelet does), with $(VAR)
    references expanded. Values from ConfigMaps and Secrets come from the
    rendered objects; resourceFieldRef from the container's resources;
    fieldRef from the pod's labels or a stand-in for what only a running pod
    has (pod_name: the workload's first pod)."""
    env = dict(image.env) if image else {}
    spec_names = set()  # what the pod spec defines, for $(VAR)

    def data_of(kind, name, source):
        obj = find(objects, kind, name)
        if obj is None:
            raise CheckError(f"container {container['name']}: {source} names {kind} {name}, which the overlay does not define")
        return obj.get("data", {})

    for ref in container.get("envFrom", []):
        prefix = ref.get("prefix", "")
        if "configMapRef" in ref:
            data = data_of("ConfigMap", ref["configMapRef"]["name"], "envFrom")
        else:
            data = data_of("Secret", ref["secretRef"]["name"], "envFrom")
        env.update({prefix + k: v for k, v in data.items()})
        spec_names.update(prefix + k for k in data)
    for var in container.get("env", []):
        name = var["name"]
        if "value" in var:
            # The kubelet knows the pod spec's variables, not the image's.
            spec_env = {k: v for k, v in env.items() if k in spec_names}
            env[name] = expand_dependent(var["value"], spec_env)
            spec_names.add(name)
            continue
        spec_names.add(name)
        source = var.get("valueFrom", {})
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[name] = data_of("ConfigMap", ref["name"], f"env {name}")[ref["key"]]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[name] = data_of("Secret", ref["name"], f"env {name}")[ref["key"]]
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            resource = ref["resource"]  # limits.cpu, requests.memory, ...
            kind, _, what = resource.partition(".")
            value = container.get("resources", {}).get(kind, {}).get(what)
            if value is None:
                raise CheckError(f"env {name}: container {container['name']} sets no {resource}")
            if what != "cpu" or str(ref.get("divisor", "1")) != "1":
                raise CheckError(f"env {name}: only {resource} with divisor 1 is modelled here")
            env[name] = str(_cpu_count(value))
        elif "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            label = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
            stand_ins = {"metadata.name": pod_name, "metadata.namespace": namespace, "status.podIP": "127.0.0.1"}
            if label and label.group(1) == "apps.kubernetes.io/pod-index":
                env[name] = "0"  # the StatefulSet's first pod
            elif label:
                env[name] = pod_labels[label.group(1)]
            elif path in stand_ins:
                env[name] = stand_ins[path]
            else:
                raise CheckError(f"env {name}: fieldRef {path} is not modelled here")
        else:
            raise CheckError(f"env {name}: no value and no valueFrom the checks know")
    return env


@dataclasses.dataclass
class ServerContainer:
    """A container that runs a binary this project builds."""

    overlay: str
    workload: dict
    pod_spec: dict
    container: dict
    image: Image
    binary: str  # the local build of its executable
    argv: list  # executable (image path) and arguments
    env: dict

    @property
    def source(self):
        return f"overlay {self.overlay}: {name_of(self.workload)} container {self.container['name']}"


def server_containers(overlay, dockerfile=None):
    """Every container in the overlay whose image is built by the
    Dockerfile, with the local binary its executable was copied from."""
    dockerfile = dockerfile or Dockerfile()
    objects = render(overlay)
    found = []
    for workload, spec, labels in pod_templates(objects):
        for c in spec.get("initContainers", []) + spec["containers"]:
            target = image_target(c["image"])
            if target is None:
                continue
            image = dockerfile.image(target)
            argv = c.get("command") or image.entrypoint
            argv = list(argv) + list(c.get("args") or [])
            if not argv:
                raise CheckError(f"overlay {overlay}: container {c['name']}: no command and no ENTRYPOINT")
            binary = image.local(argv[0])
            if binary is None:
                raise CheckError(
                    f"overlay {overlay}: container {c['name']} runs {argv[0]}, which "
                    f"the Dockerfile's target {target} does not COPY in"
                )
            env = container_env(c, labels, objects, image, **pod_identity(workload))
            argv = [expand_dependent(a, env) for a in argv]
            found.append(ServerContainer(overlay, workload, spec, c, image, binary, argv, env))
    return found


def pod_identity(workload):
    """The stand-ins for a workload's first pod: its name (a StatefulSet's
    ordinal 0) and namespace."""
    meta = workload["metadata"]
    return {"pod_name": f"{meta['name']}-0", "namespace": meta.get("namespace", "default")}


def resolve_host(objects, host):
    """What a DNS name in the settings names inside the overlay:
    ("pod", StatefulSet, ordinal) for <statefulset>-<n>.<serviceName>[.<ns>
    .svc[.cluster.local]], whose governing Service is headless; ("service",
    Service, None) for <service>[.<ns>.svc[.cluster.local]]; None if it
    names nothing here (the name must resolve in the pods' namespace)."""
    labels = host.split(".")
    for suffix in (["svc", "cluster", "local"], ["svc"], []):
        if suffix and labels[-len(suffix):] == suffix:
            labels = labels[: -len(suffix)]
            break
    namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] in WORKLOAD_KINDS}
    if len(labels) == 3 and labels[2] in namespaces:
        labels = labels[:2]  # <pod>.<service>.<namespace>
    elif len(labels) == 2 and labels[1] in namespaces and find(objects, "Service", labels[0]):
        labels = labels[:1]  # <service>.<namespace>
    if len(labels) == 1:
        svc = find(objects, "Service", labels[0])
        return ("service", svc, None) if svc else None
    if len(labels) != 2:
        return None
    pod, service = labels
    for o in objects:
        if o["kind"] != "StatefulSet" or o["spec"].get("serviceName") != service:
            continue
        m = re.fullmatch(re.escape(o["metadata"]["name"]) + r"-(\d+)", pod)
        if m and int(m.group(1)) < o["spec"].get("replicas", 1):
            svc = find(objects, "Service", service)
            if svc is not None and svc["spec"].get("clusterIP") == "None":
                return ("pod", o, int(m.group(1)))
    return None


def secret_mounts(sc):
    """The Secret volumes a server container mounts: {mount path: Secret
    name}."""
    secrets = {v["name"]: v["secret"]["secretName"] for v in sc.pod_spec.get("volumes", []) if "secret" in v}
    return {m["mountPath"]: secrets[m["name"]] for m in sc.container.get("volumeMounts", []) if m["name"] in secrets}


def check_config(binary, args, env):
    """Runs `binary --check_config ARGS` with exactly `env` (plus PATH);
    returns (exit code, {setting: value}, stderr)."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    full_env.update(env)
    p = run([binary, "--check_config"] + list(args), env=full_env, timeout=60)
    settings = {}
    for line in p.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            settings[key] = value
    return p.returncode, settings, p.stderr


def same_setting(a, b):
    """Whether two spellings of a flag value are the same value."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return a.lower() == b.lower()


def port_of(address):
    return int(address.rsplit(":", 1)[1])


# ---- Metric names ------------------------------------------------------------------

_PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "inf", "nan", "start", "end",
}


def metric_names(expr):
    """The metric names a PromQL expression (or a Grafana query, with its
    $variables and label_values()) reads."""
    text = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+|\[\[[^\]]*\]\]", "", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges, subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    # Grafana: label_values(metric, label) and label_values(label)
    text = re.sub(r"\blabel_values\s*\(\s*([^,()]*?)\s*,\s*[a-zA-Z_]\w*\s*\)", r" \1 ", text)
    text = re.sub(r"\blabel_values\s*\(\s*[a-zA-Z_]\w*\s*\)", " ", text)
    text = re.sub(r"\boffset\s+-?\w+", " ", text)
    text = re.sub(r"(?<![\w:])\d+(\.\d+)?([eE][+-]?\d+)?\w*", " ", text)  # numbers, durations
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        rest = text[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or aggregation
        if m.group(0).lower() in _PROMQL_WORDS:
            continue
        names.add(m.group(0))
    return names


def used_metrics(objects):
    """{metric name: [where it is used]} for every rule and dashboard query,
    and the names recording rules define."""
    used, recorded = {}, set()
    for source, groups in rule_groups(objects):
        for group in groups:
            for rule in group["rules"]:
                what = rule.get("alert") or rule.get("record")
                if "record" in rule:
                    recorded.add(rule["record"])
                for name in metric_names(rule["expr"]):
                    used.setdefault(name, []).append(f"{source} {what}")
    for source, dash in dashboards(objects):
        queries = []
        for panel in dash.get("panels", []):
            for t in panel.get("targets", []):
                queries.append((f"panel {panel.get('title')!r}", t.get("expr", "")))
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                q = var.get("query")
                queries.append((f"variable {var['name']}", q.get("query", "") if isinstance(q, dict) else q))
        for where, q in queries:
            for name in metric_names(q):
                used.setdefault(name, []).append(f"{source} {where}")
    return used, recorded


def external_metrics():
    """Metric names that other exporters provide (external-metrics.txt)."""
    names = {}
    with open(os.path.join(TESTS, "external-metrics.txt")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, source = line.partition(" ")
                names[name] = source.strip()
    return names


def exposition_names(text):
    """The sample names in a Prometheus text exposition (histograms as their
    _bucket, _sum and _count series)."""
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()
