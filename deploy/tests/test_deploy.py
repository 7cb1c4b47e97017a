#!/usr/bin/python3
"""Offline checks of deploy/: every overlay renders and validates, every
claim the manifests make about the binary is checked against the binary.
ctest runs one class per entry (tests/CMakeLists.txt):

  RenderTest    kubectl kustomize of every overlay; references between
                objects resolve; pod security; dashboards; every alert
                documented in deploy/README.md
  SchemaTest    every object against the Kubernetes and prometheus-operator
                schemas (validate-schemas.mjs)
  FlagsTest     every container's flags and PEAKKNN_* variables through the
                real binary (--check_config), and what the manifests assume
                of the settings in force: ports, probes, data volume,
                termination grace above the drain, the CUDA plugin; cluster
                roles: NATS URLs and advertised addresses name pods of the
                overlay, every shard the router creates has replicas
  RulesTest     promtool check rules and promtool test rules
  ImageTest     the Dockerfile: COPY sources exist in the build tree; the
                runtime packages provide every library the binaries load
  LocalRunTest  each overlay's server started as a process on loopback from
                the rendered container's settings: probes SERVING, inserts
                and searches, every metric a rule or panel reads is exported,
                SIGTERM within the grace period keeps every acknowledged row;
                an overlay with cluster roles as a whole cluster: its NATS
                pods as nats-server processes from the rendered
                configuration, its shard replicas and router, traffic
                through the router (needs nats-server)
  SelfTest      the parsers the checks rely on

  /usr/bin/python3 deploy/tests/test_deploy.py -v RenderTest
Environment: PEAKKNN_BUILD_DIR (the build tree, default build/).
"""

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import deploylib as dl  # noqa: E402

NODE_MODULES = os.path.join(dl.TESTS, "node_modules")
ALERT_TESTS = os.path.join(dl.TESTS, "rules", "peakknn-alerts.test.yaml")
README = os.path.join(dl.DEPLOY, "README.md")
# The checkpoint after the drain writes every live row; this is the least
# time the manifests must leave it inside terminationGracePeriodSeconds.
CHECKPOINT_BUDGET_S = 30


def all_objects():
    """(overlay, object) over every overlay."""
    for overlay in dl.overlays():
        for obj in dl.render(overlay):
            yield overlay, obj


def container_ports(spec):
    return {p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", []) if "name" in p}


def selected_pods(objects, match_labels):
    return [(w, spec) for w, spec, labels in dl.pod_templates(objects) if dl.selects(match_labels, labels)]


class RenderTest(unittest.TestCase):
    def test_every_overlay_renders_a_workload(self):
        names = dl.overlays()
        self.assertIn("standalone", names)
        self.assertIn("gpu", names)
        for overlay in names:
            objects = dl.render(overlay)
            self.assertTrue(list(dl.pod_templates(objects)), f"overlay {overlay} renders no workload")

    def test_references_between_objects_resolve(self):
        problems = []
        for overlay in dl.overlays():
            objects = dl.render(overlay)
            problems += reference_problems(overlay, objects)
        self.assertEqual(problems, [])

    def test_reference_check_catches_a_wrong_port_name(self):
        objects = copy.deepcopy(dl.render("standalone"))
        monitor = next(o for o in objects if o["kind"] == "PodMonitor")
        monitor["spec"]["podMetricsEndpoints"][0]["port"] = "metric"
        self.assertTrue(any("port metric" in p for p in reference_problems("standalone", objects)))

    def test_reference_check_catches_a_policy_peer_and_a_budget_selecting_nothing(self):
        objects = copy.deepcopy(dl.render("cluster"))
        policy = next(o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "peakknn-shard")
        policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] = "routr"
        budget = next(o for o in objects if o["kind"] == "PodDisruptionBudget")
        budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "nothing"
        hpa = next(o for o in objects if o["kind"] == "HorizontalPodAutoscaler")
        hpa["spec"]["scaleTargetRef"]["name"] = "router"
        problems = "\n".join(reference_problems("cluster", objects))
        self.assertRegex(problems, r"NetworkPolicy/peakknn-shard: ingress from .*'routr'.* selects no pod")
        self.assertIn(f"PodDisruptionBudget/{budget['metadata']['name']}: selects no pod", problems)
        self.assertIn("scaleTargetRef Deployment/router", problems)

    def test_pods_meet_the_restricted_pod_security_standard(self):
        problems = []
        for overlay in dl.overlays():
            for workload, spec, _ in dl.pod_templates(dl.render(overlay)):
                problems += security_problems(f"overlay {overlay}: {dl.name_of(workload)}", spec)
        self.assertEqual(problems, [])

    def test_security_check_catches_a_privileged_container(self):
        _, spec, _ = next(dl.pod_templates(dl.render("standalone")))
        spec = copy.deepcopy(spec)
        spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
        del spec["containers"][0]["resources"]["limits"]
        problems = security_problems("x", spec)
        self.assertEqual(len(problems), 2, problems)

    def test_dashboards_are_grafana_dashboards(self):
        for overlay in dl.overlays():
            found = list(dl.dashboards(dl.render(overlay)))
            self.assertTrue(found, f"overlay {overlay}: no ConfigMap labelled grafana_dashboard=1")
            for source, dash in found:
                where = f"overlay {overlay}: {source}"
                for key in ("uid", "title", "panels", "schemaVersion"):
                    self.assertIn(key, dash, where)
                ids = [p["id"] for p in dash["panels"]]
                self.assertEqual(len(ids), len(set(ids)), f"{where}: panel ids repeat")
                for p in dash["panels"]:
                    if p["type"] == "row":
                        continue
                    self.assertIn("gridPos", p, f"{where}: panel {p['title']}")
                    self.assertTrue(p.get("targets"), f"{where}: panel {p['title']} has no query")
                    for t in p["targets"]:
                        self.assertTrue(t.get("expr"), f"{where}: panel {p['title']} target {t.get('refId')}")
                        self.assertEqual(t["datasource"]["uid"], "${datasource}", f"{where}: panel {p['title']}")

    def test_every_alert_is_explained_in_the_readme(self):
        with open(README) as f:
            headings = {line.strip("# \n").lower() for line in f if line.startswith("#")}
        for overlay, obj in all_objects():
            if obj["kind"] != "PrometheusRule":
                continue
            for group in obj["spec"]["groups"]:
                for rule in group["rules"]:
                    if "alert" not in rule:
                        continue
                    where = f"overlay {overlay}: alert {rule['alert']}"
                    self.assertIn(rule["labels"].get("severity"), ("warning", "critical"), where)
                    self.assertIn("summary", rule["annotations"], where)
                    anchor = rule["annotations"].get("runbook", "").partition("#")[2]
                    self.assertIn(anchor, headings, f"{where}: runbook anchor #{anchor} is not a heading of {README}")


def reference_problems(overlay, objects):
    """Names between objects that point at nothing: Service and PodMonitor
    selectors and ports, StatefulSet governing Services, NetworkPolicy
    selectors and ports, probe ports, workload selectors."""
    problems = []
    where = f"overlay {overlay}"
    for workload, spec, labels in dl.pod_templates(objects):
        name = f"{where}: {dl.name_of(workload)}"
        if not dl.selects(workload["spec"]["selector"].get("matchLabels", {}), labels):
            problems.append(f"{name}: selector does not match its pod template")
        if workload["kind"] == "StatefulSet":
            svc = dl.find(objects, "Service", workload["spec"].get("serviceName", ""))
            if svc is None or svc["spec"].get("clusterIP") != "None":
                problems.append(f"{name}: serviceName {workload['spec'].get('serviceName')} is not a headless Service here")
        ports = set(container_ports(spec).values())
        for c in spec["containers"]:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                handler = c.get(probe, {})
                for kind in ("grpc", "httpGet", "tcpSocket"):
                    if kind in handler and handler[kind]["port"] not in ports | set(container_ports(spec)):
                        problems.append(f"{name}: {c['name']} {probe} port {handler[kind]['port']} is no container port")
    for obj in objects:
        name = f"{where}: {dl.name_of(obj)}"
        if obj["kind"] == "Service":
            pods = selected_pods(objects, obj["spec"].get("selector", {}))
            if not pods:
                problems.append(f"{name}: selects no pod")
            for port in obj["spec"].get("ports", []):
                target = port.get("targetPort", port["port"])
                for w, spec in pods:
                    if target not in container_ports(spec) and target not in container_ports(spec).values():
                        problems.append(f"{name}: targetPort {target} is not a port of {dl.name_of(w)}")
        elif obj["kind"] == "PodMonitor":
            pods = selected_pods(objects, obj["spec"]["selector"].get("matchLabels", {}))
            if not pods:
                problems.append(f"{name}: selects no pod")
            for endpoint in obj["spec"]["podMetricsEndpoints"]:
                for w, spec in pods:
                    if endpoint.get("port") not in container_ports(spec):
                        problems.append(f"{name}: port {endpoint.get('port')} is not a port of {dl.name_of(w)}")
        elif obj["kind"] == "NetworkPolicy":
            pods = selected_pods(objects, obj["spec"]["podSelector"].get("matchLabels", {}))
            if not pods:
                problems.append(f"{name}: selects no pod")
            for rule in obj["spec"].get("ingress", []):
                for port in rule.get("ports", []):
                    if isinstance(port.get("port"), str) and not any(port["port"] in container_ports(s) for _, s in pods):
                        problems.append(f"{name}: port {port['port']} is not a port of the pods it selects")
            # Peers in this namespace (a podSelector alone) are pods of the
            # overlay; a named egress port is a port of those peers.
            for direction, peers_key in (("ingress", "from"), ("egress", "to")):
                for rule in obj["spec"].get(direction, []):
                    peers = []
                    for peer in rule.get(peers_key, []):
                        if "podSelector" in peer and "namespaceSelector" not in peer:
                            found = selected_pods(objects, peer["podSelector"].get("matchLabels", {}))
                            if not found:
                                problems.append(f"{name}: {direction} {peers_key} {peer['podSelector']} selects no pod")
                            peers += found
                    if direction == "egress" and peers:
                        for port in rule.get("ports", []):
                            if isinstance(port.get("port"), str) and not any(port["port"] in container_ports(s) for _, s in peers):
                                problems.append(f"{name}: egress port {port['port']} is not a port of the pods it allows")
        elif obj["kind"] == "PodDisruptionBudget":
            if not selected_pods(objects, obj["spec"]["selector"].get("matchLabels", {})):
                problems.append(f"{name}: selects no pod")
        elif obj["kind"] == "HorizontalPodAutoscaler":
            ref = obj["spec"]["scaleTargetRef"]
            target = dl.find(objects, ref["kind"], ref["name"])
            if target is None:
                problems.append(f"{name}: scaleTargetRef {ref['kind']}/{ref['name']} is not in the overlay")
            elif any(m.get("type") == "Resource" for m in obj["spec"].get("metrics", [])):
                # Utilisation is measured against requests.
                for c in target["spec"]["template"]["spec"]["containers"]:
                    for m in obj["spec"]["metrics"]:
                        what = m.get("resource", {}).get("name")
                        if what and what not in c.get("resources", {}).get("requests", {}):
                            problems.append(f"{name}: {dl.name_of(target)} container {c['name']} requests no {what}")
    return problems


def security_problems(where, spec):
    """What keeps a pod spec from the restricted Pod Security Standard, or
    from this project's own bar (read-only root, resource requests and
    limits)."""
    problems = []
    pod = spec.get("securityContext", {})
    for c in spec.get("initContainers", []) + spec["containers"]:
        name = f"{where}: container {c['name']}"
        sc = c.get("securityContext", {})
        if not (sc.get("runAsNonRoot", pod.get("runAsNonRoot")) is True):
            problems.append(f"{name}: runAsNonRoot is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        seccomp = sc.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile is {seccomp}, not RuntimeDefault")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem is not true")
        resources = c.get("resources", {})
        for kind in ("requests", "limits"):
            for what in ("cpu", "memory"):
                if what not in resources.get(kind, {}):
                    problems.append(f"{name}: no {kind}.{what}")
                    break
    return problems


class SchemaTest(unittest.TestCase):
    def validate(self, entries):
        if not os.path.isdir(NODE_MODULES):
            self.fail(f"{NODE_MODULES} is missing: run scripts/install-deploy-tools.sh")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(entries, f)
        try:
            p = dl.run(["node", os.path.join(dl.TESTS, "validate-schemas.mjs"), f.name], timeout=300)
        finally:
            os.unlink(f.name)
        return p.returncode, p.stdout + p.stderr

    def test_every_object_validates(self):
        entries = [
            {"source": f"overlay {overlay}: {dl.name_of(obj)}", "object": obj} for overlay, obj in all_objects()
        ]
        rc, output = self.validate(entries)
        self.assertEqual(rc, 0, output)
        print(output.strip())

    def test_validator_rejects_an_unknown_field_and_a_wrong_type(self):
        sts = next(o for o in dl.render("standalone") if o["kind"] == "StatefulSet")
        misspelt = copy.deepcopy(sts)
        misspelt["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 120
        wrong_type = copy.deepcopy(sts)
        wrong_type["spec"]["replicas"] = "1"
        rc, output = self.validate(
            [{"source": "misspelt", "object": misspelt}, {"source": "wrong type", "object": wrong_type}]
        )
        self.assertNotEqual(rc, 0, output)
        self.assertRegex(output, r"misspelt: .*terminationGracePeriodSecond")
        self.assertRegex(output, r"wrong type: .*replicas must be integer")


class FlagsTest(unittest.TestCase):
    def test_every_container_setting_is_accepted_and_consistent(self):
        checked = 0
        dockerfile = dl.Dockerfile()
        for overlay in dl.overlays():
            for sc in dl.server_containers(overlay, dockerfile):
                checked += 1
                with self.subTest(sc.source):
                    self.assertEqual(server_container_problems(sc), [])
                    settings = effective_settings(sc)
                    print(f"{sc.source}: {sc.binary} --check_config accepts "
                          f"{len([v for v in sc.env if v.startswith('PEAKKNN_')])} PEAKKNN_* variables and "
                          f"{len(sc.argv) - 1} arguments; role {settings['role']}, backend {settings['backend']}, drain "
                          f"{settings['drain_seconds']} s, grace {sc.pod_spec.get('terminationGracePeriodSeconds', 30)} s")
        self.assertGreater(checked, 0, "no container runs a binary the Dockerfile ships")

    def test_cluster_topology_is_complete(self):
        for overlay in dl.overlays():
            self.assertEqual(cluster_topology_problems(overlay), [])
        roles = sorted(effective_settings(sc)["role"] for sc in dl.server_containers("cluster"))
        self.assertEqual(set(roles), {"router", "shard"}, roles)

    def test_the_checks_catch_a_wrong_advertise_address_and_a_missing_shard(self):
        shard = next(sc for sc in dl.server_containers("cluster") if sc.env.get("PEAKKNN_ROLE") == "shard")
        shard.env["PEAKKNN_ADVERTISE_ADDRESS"] = "peakknn-shard-0-0.nats-headless.peakknn.svc:50051"
        shard.env["PEAKKNN_REPLICA_NAME"] = "replica"
        shard.env["PEAKKNN_NATS_URLS"] = "nats://nats-3.nats-headless:4222,nats://nats-0.nats-headless:4223"
        problems = "\n".join(server_container_problems(shard))
        self.assertIn("not the pod's stable DNS name", problems)
        self.assertIn("not the pod's name", problems)
        self.assertIn("nats-3.nats-headless:4222 names no pod", problems)
        self.assertIn("has no port 4223", problems)
        objects = dl.render("cluster")
        router = next(w for w in objects if w["kind"] == "Deployment")
        env = router["spec"]["template"]["spec"]["containers"][0]["env"]
        saved = copy.deepcopy(env)
        try:
            next(v for v in env if v["name"] == "PEAKKNN_SHARDS")["value"] = "3"
            self.assertIn("no replica holds shard(s) [2]", "\n".join(cluster_topology_problems("cluster")))
        finally:
            env[:] = saved

    def test_the_checks_catch_a_short_grace_period_and_an_unknown_variable(self):
        sc = dl.server_containers("standalone")[0]
        sc.env["PEAKKNN_DRAIN_SECONDS"] = "110"
        sc.env["PEAKKNN_NO_SUCH_SETTING"] = "1"
        problems = "\n".join(server_container_problems(sc))
        self.assertIn("terminationGracePeriodSeconds", problems)
        self.assertIn("PEAKKNN_NO_SUCH_SETTING", problems)

    def test_the_checks_catch_tls_probed_on_the_grpc_port(self):
        sc = dl.server_containers("standalone-secure")[0]
        del sc.env["PEAKKNN_HEALTH_LISTEN"]
        problems = "\n".join(server_container_problems(sc))
        self.assertIn("cannot speak TLS", problems)

    def test_the_binary_rejects_bad_settings(self):
        sc = dl.server_containers("standalone")[0]
        rc, _, err = dl.check_config(sc.binary, ["--no_such_flag=1"], sc.env)
        self.assertNotEqual(rc, 0)
        self.assertIn("no_such_flag", err)
        rc, _, err = dl.check_config(sc.binary, [], dict(sc.env, PEAKKNN_MAX_BATCH="0"))
        self.assertEqual(rc, 2, err)
        self.assertIn("--max_batch=0", err)
        rc, _, err = dl.check_config(sc.binary, ["serve"], sc.env)
        self.assertEqual(rc, 2, err)


def effective_settings(sc):
    """The settings in force for a container, from the real binary."""
    rc, settings, err = dl.check_config(sc.binary, sc.argv[1:], sc.env)
    if rc != 0:
        raise dl.CheckError(f"{sc.source}: {sc.binary} --check_config rejects the settings (exit {rc}): {err.strip()}")
    return settings


def server_container_problems(sc):
    """Everything the manifests assume of a server container's settings,
    checked against what the binary says is in force."""
    problems = []
    where = sc.source
    try:
        settings = effective_settings(sc)
    except dl.CheckError as e:
        return [str(e)]
    # Every PEAKKNN_ variable is a setting, and took effect (unless an
    # argument overrides it, as the binary documents).
    overridden = {a[2:].partition("=")[0] for a in sc.argv[1:] if a.startswith("--")}
    for var, value in sorted(sc.env.items()):
        if not var.startswith("PEAKKNN_"):
            continue
        name = var[len("PEAKKNN_"):].lower()
        if name not in settings:
            problems.append(f"{where}: {var} is set, but the binary has no setting --{name}")
        elif name not in overridden and not dl.same_setting(settings[name], value):
            problems.append(f"{where}: {var}={value} but the binary runs with {name}={settings[name]}")
    spec, container = sc.pod_spec, sc.container
    # SIGTERM: the drain, then the checkpoint, inside the grace period.
    grace = spec.get("terminationGracePeriodSeconds", 30)
    drain = float(settings["drain_seconds"])
    if grace < drain + CHECKPOINT_BUDGET_S:
        problems.append(
            f"{where}: terminationGracePeriodSeconds {grace} leaves under {CHECKPOINT_BUDGET_S} s for the "
            f"shutdown checkpoint after drain_seconds {drain:g}"
        )
    liveness = container.get("livenessProbe")
    if liveness:
        window = liveness.get("periodSeconds", 10) * liveness.get("failureThreshold", 3)
        if window < grace:
            problems.append(
                f"{where}: livenessProbe fails after {window} s of NOT_SERVING, inside the "
                f"{grace} s grace period of a graceful shutdown"
            )
    # Addresses: the pod's IP (not loopback) on the ports the manifests name.
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    addresses = [("listen", "grpc"), ("metrics_listen", "metrics")]
    if settings.get("health_listen"):
        addresses.append(("health_listen", "health"))
    for setting, port_name in addresses:
        address = settings[setting]
        host = address.rsplit(":", 1)[0]
        if host not in ("0.0.0.0", "[::]", ""):
            problems.append(f"{where}: {setting}={address} is not reachable from outside the pod")
        if ports.get(port_name) != dl.port_of(address):
            problems.append(f"{where}: {setting} port {dl.port_of(address)} is not containerPort {port_name} ({ports.get(port_name)})")
    # Probes ask the plaintext health port when there is one (a kubelet
    # gRPC probe cannot speak TLS), else the gRPC port, which then must not
    # require TLS.
    probed = "health_listen" if settings.get("health_listen") else "listen"
    if probed == "listen" and settings.get("tls_cert_file"):
        problems.append(f"{where}: TLS on the gRPC port and no health_listen: the kubelet's gRPC probes cannot speak TLS")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        grpc = container.get(probe, {}).get("grpc")
        if grpc is None:
            problems.append(f"{where}: no gRPC {probe} (the server reports grpc.health.v1)")
        elif grpc["port"] != dl.port_of(settings[probed]):
            problems.append(f"{where}: {probe} probes port {grpc['port']}, the server's {probed} is {settings[probed]}")
    problems += cluster_role_problems(sc, settings)
    # The data directory is a writable volume (the root file system is not);
    # a router keeps no data and never opens it.
    data_dir = os.path.normpath(settings["data_dir"])
    mounts = mounts_for(container, data_dir)  # the innermost mount holds data_dir
    if settings.get("role") == "router":
        pass
    elif not mounts or mounts[-1].get("readOnly"):
        problems.append(f"{where}: data_dir {data_dir} is on no writable volume")
    elif sc.workload["kind"] == "StatefulSet":
        claims = {t["metadata"]["name"] for t in sc.workload["spec"].get("volumeClaimTemplates", [])}
        if mounts[-1]["name"] not in claims:
            problems.append(f"{where}: data_dir {data_dir} is not on a PersistentVolumeClaim")
    # The image's user is the pod's.
    run_as = container.get("securityContext", {}).get("runAsUser", spec.get("securityContext", {}).get("runAsUser"))
    if run_as is not None and str(run_as) != sc.image.user.partition(":")[0]:
        problems.append(f"{where}: runAsUser {run_as}, but the image {sc.image.target} runs as {sc.image.user}")
    # The CUDA backend: a GPU, the GPU image, and a plugin the image ships.
    gpus = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    if settings["backend"] == "cuda":
        if not gpus:
            problems.append(f"{where}: backend=cuda without an nvidia.com/gpu limit")
        if settings["cuda_plugin"] and sc.image.local(settings["cuda_plugin"]) is None:
            problems.append(f"{where}: cuda_plugin {settings['cuda_plugin']} is not in image {sc.image.target}")
        if "libpeakknn_cuda_plugin.so" not in {os.path.basename(p) for p in sc.image.files}:
            problems.append(f"{where}: backend=cuda, but image {sc.image.target} has no CUDA plugin")
    elif gpus:
        problems.append(f"{where}: an nvidia.com/gpu limit, but backend={settings['backend']}")
    return problems


def mounts_for(container, path):
    """The container's volume mounts that hold `path`, innermost last."""
    return sorted(
        (m for m in container.get("volumeMounts", [])
         if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")),
        key=lambda m: len(m["mountPath"]),
    )


def cluster_role_problems(sc, settings):
    """What the cluster roles assume of the overlay: the NATS URLs name NATS
    pods (or a Service) of this overlay on their client port; a shard
    replica is a StatefulSet pod named after itself (its replica name, unique
    and stable), advertising its own stable DNS name on its gRPC port."""
    role = settings.get("role", "standalone")
    if role == "standalone":
        return []
    problems, where = [], sc.source
    objects = dl.render(sc.overlay)
    urls = [u for u in settings.get("nats_urls", "").split(",") if u]
    if not urls:
        problems.append(f"{where}: role {role} without nats_urls")
    for url in urls:
        m = re.fullmatch(r"nats://([^:/]+):(\d+)", url)
        target = dl.resolve_host(objects, m.group(1)) if m else None
        if target is None:
            problems.append(f"{where}: nats_urls {url} names no pod or Service of the overlay")
            continue
        kind, obj, _ = target
        if kind == "pod":
            ports = container_ports(obj["spec"]["template"]["spec"])
            if int(m.group(2)) not in ports.values():
                problems.append(f"{where}: nats_urls {url}: {dl.name_of(obj)} has no port {m.group(2)}")
        elif int(m.group(2)) not in [p["port"] for p in obj["spec"].get("ports", [])]:
            problems.append(f"{where}: nats_urls {url}: {dl.name_of(obj)} has no port {m.group(2)}")
    if role == "shard":
        pod = dl.pod_identity(sc.workload)["pod_name"]
        if sc.workload["kind"] != "StatefulSet":
            problems.append(f"{where}: a shard replica needs a stable name and its own volume: a StatefulSet")
        if settings.get("replica_name") != pod:
            problems.append(f"{where}: replica_name={settings.get('replica_name')!r}, not the pod's name "
                            f"(metadata.name, {pod!r} for the first pod): replicas of a shard would share it")
        address = settings.get("advertise_address", "")
        host, _, port = address.rpartition(":")
        target = dl.resolve_host(objects, host) if host else None
        if target is None or target[:2] != ("pod", sc.workload) or target[2] != 0:
            problems.append(f"{where}: advertise_address={address!r} is not the pod's stable DNS name "
                            f"({pod}.{sc.workload['spec'].get('serviceName')}.<namespace>.svc)")
        ports = {p["name"]: p["containerPort"] for p in sc.container.get("ports", [])}
        if not port.isdigit() or int(port) != ports.get("grpc"):
            problems.append(f"{where}: advertise_address port {port} is not containerPort grpc ({ports.get('grpc')})")
    return problems


def cluster_topology_problems(overlay):
    """Across an overlay's routers and shard replicas: every shard a router
    creates collections with has a workload; they all agree on NATS (URLs,
    replicas), and NATS has as many servers as streams want copies."""
    problems = []
    routers, shards = [], {}
    for sc in dl.server_containers(overlay):
        settings = effective_settings(sc)
        if settings["role"] == "router":
            routers.append((sc, settings))
        elif settings["role"] == "shard":
            shards.setdefault(int(settings["shard"]), []).append((sc, settings))
    everyone = routers + [x for v in shards.values() for x in v]
    if not routers and not shards:
        return []
    if not routers:
        problems.append(f"overlay {overlay}: shard replicas and no router")
    for sc, settings in routers:
        missing = sorted(set(range(int(settings["shards"]))) - shards.keys())
        if missing:
            problems.append(f"{sc.source}: shards={settings['shards']}, but no replica holds shard(s) {missing}")
        extra = sorted(s for s in shards if s >= int(settings["shards"]))
        if extra:
            problems.append(f"{sc.source}: shards={settings['shards']}, but replicas hold shard(s) {extra}")
    for key in ("nats_urls", "nats_replicas"):
        values = {settings[key] for _, settings in everyone}
        if len(values) > 1:
            problems.append(f"overlay {overlay}: routers and shards disagree on {key}: {sorted(values)}")
    objects = dl.render(overlay)
    for sc, settings in everyone:
        hosts = [re.sub(r"^nats://|:\d+$", "", u) for u in settings["nats_urls"].split(",")]
        for host in hosts:
            target = dl.resolve_host(objects, host)
            if target and target[0] == "pod" and target[1]["spec"].get("replicas", 1) < int(settings["nats_replicas"]):
                problems.append(f"{sc.source}: nats_replicas={settings['nats_replicas']}, but "
                                f"{dl.name_of(target[1])} has {target[1]['spec'].get('replicas', 1)} servers")
                break
    return problems


class RulesTest(unittest.TestCase):
    def rule_files(self):
        """{rules text: [overlays]}: overlays that render the same rules are
        checked once."""
        files = {}
        for overlay in dl.overlays():
            groups = [g for _, gs in dl.rule_groups(dl.render(overlay)) for g in gs]
            self.assertTrue(groups, f"overlay {overlay} has no PrometheusRule")
            files.setdefault(yaml.safe_dump({"groups": groups}), []).append(overlay)
        return files

    def test_promtool_checks_and_unit_tests_pass(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool not found (Debian package prometheus, scripts/install-deps.sh)")
        for text, overlays in self.rule_files().items():
            with tempfile.TemporaryDirectory() as tmp:
                rules = os.path.join(tmp, "peakknn.rules.yaml")
                with open(rules, "w") as f:
                    f.write(text)
                shutil.copy(ALERT_TESTS, tmp)
                for argv in (
                    [promtool, "check", "rules", rules],
                    [promtool, "test", "rules", os.path.join(tmp, os.path.basename(ALERT_TESTS))],
                ):
                    p = dl.run(argv, timeout=120)
                    self.assertEqual(p.returncode, 0, f"overlays {overlays}: {' '.join(argv[1:3])}:\n{p.stdout}{p.stderr}")
                    print(f"overlays {', '.join(overlays)}: promtool {' '.join(argv[1:3])}: {p.stdout.strip().splitlines()[-1]}")

    def test_every_alert_has_unit_tests(self):
        with open(ALERT_TESTS) as f:
            tests = yaml.safe_load(f)["tests"]
        tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])}
        for text, overlays in self.rule_files().items():
            alerts = {r["alert"] for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r}
            self.assertEqual(alerts - tested, set(), f"overlays {overlays}: alerts without a promtool test")


class ImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dockerfile = dl.Dockerfile()
        used = {s.base for s in cls.dockerfile.stages}
        for s in cls.dockerfile.stages:
            for ins in s.instructions:
                m = re.search(r"--from=(\S+)", ins.args) if ins.cmd == "COPY" else None
                if m:
                    used.add(m.group(1))
        # The images: stages that no other stage builds on.
        cls.targets = [s.name for s in cls.dockerfile.stages if s.name not in used]

    def buildable(self, image):
        """Why this machine cannot check a target, or None: the GPU image
        needs the CUDA toolkit, and a build tree configured with it (CMake
        builds the plugin only where nvcc is found)."""
        if any(f.local_path.startswith(dl.CUDA_ROOT + "/") for f in image.files.values()):
            if not os.path.isdir(dl.CUDA_ROOT):
                return f"no CUDA toolkit at {dl.CUDA_ROOT}"
        if any(p.endswith("libpeakknn_cuda_plugin.so") for p in image.files) and not dl.BUILD_HAS_CUDA:
            return f"the build tree {dl.BUILD_DIR} was configured without CUDA, so it has no plugin"
        return None

    def test_the_manifests_images_are_targets(self):
        for overlay in dl.overlays():
            for _, spec, _ in dl.pod_templates(dl.render(overlay)):
                for c in spec["containers"]:
                    target = dl.image_target(c["image"])
                    if target is not None:
                        self.assertIn(target, self.targets, f"overlay {overlay}: {c['image']}")

    def test_every_copy_source_exists_in_the_build_tree(self):
        for target in self.targets:
            image = self.dockerfile.image(target)
            with self.subTest(target):
                why = self.buildable(image)
                if why:
                    self.skipTest(f"target {target}: {why}")
                missing = [
                    f"Dockerfile line {f.line}: {f.image_path} <- {f.local_path}"
                    for f in image.files.values()
                    if not os.path.exists(f.local_path)
                ]
                self.assertEqual(missing, [], f"target {target}: COPY sources missing (build: ninja -C {dl.BUILD_DIR} peakknn-server peakknn)")

    def test_entrypoint_is_exec_form_as_a_non_root_user(self):
        for target in self.targets:
            image = self.dockerfile.image(target)
            self.assertTrue(image.entrypoint_is_exec_form, f"{target}: ENTRYPOINT in shell form needs a shell")
            self.assertIn(image.entrypoint[0], image.files, f"{target}: ENTRYPOINT {image.entrypoint[0]} is not copied in")
            uid = image.user.partition(":")[0]
            self.assertTrue(uid.isdigit() and int(uid) > 0, f"{target}: USER {image.user} must be a numeric non-root uid (runAsNonRoot needs one)")

    def test_runtime_packages_provide_every_library(self):
        for target in self.targets:
            image = self.dockerfile.image(target)
            with self.subTest(target):
                why = self.buildable(image)
                if why:
                    self.skipTest(f"target {target}: {why}")
                missing, checked = missing_libraries(image)
                self.assertEqual(missing, [], f"target {target}: libraries the image lacks")
                self.assertGreater(checked, 0)
                print(f"target {target}: {checked} libraries, all provided by {len(image.apt_packages)} packages "
                      f"(with their dependencies) or copied in")

    def test_library_check_catches_a_missing_package(self):
        image = self.dockerfile.image("runtime")
        image.apt_packages = [p for p in image.apt_packages if p != "libisal2"]
        missing, _ = missing_libraries(image)
        self.assertTrue(any("libisal.so.2" in m for m in missing), missing)


def dependency_closure(packages):
    """The installed packages that apt would install with `packages`
    (Depends and Pre-Depends, the first installed alternative of each, and
    virtual packages through Provides), read from dpkg's database: the
    binaries were built here against the same Debian 12 packages."""
    p = dl.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Pre-Depends}, ${Depends}\t${Provides}\n"])
    depends, provides = {}, {}
    for line in p.stdout.splitlines():
        name, status, deps, prov = line.split("\t")
        if not status.startswith("ii"):
            continue
        depends[name] = deps
        for v in prov.split(","):
            if v.strip():
                provides.setdefault(v.split()[0].split(":")[0], name)
    closure, todo, unknown = set(), list(packages), []
    while todo:
        name = todo.pop()
        name = name if name in depends else provides.get(name, name)
        if name in closure:
            continue
        if name not in depends:
            unknown.append(name)
            continue
        closure.add(name)
        for clause in depends[name].split(","):
            alternatives = [a.split()[0].split(":")[0] for a in clause.split("|") if a.strip()]
            if alternatives:
                installed = [a for a in alternatives if a in depends or a in provides]
                todo.append(installed[0] if installed else alternatives[0])
    return closure, unknown


LIB_DIRS = {"/lib", "/usr/lib", "/lib64", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"}


def missing_libraries(image):
    """The shared libraries that a binary the image ships loads (ldd, so
    with their own dependencies) and that neither the image's packages nor
    its copied files in LD_LIBRARY_PATH provide. Returns (missing, number of
    libraries checked)."""
    closure, unknown = dependency_closure(image.apt_packages)
    missing = [f"package {u} is not installed here: its file list is unknown" for u in unknown]
    files = dl.run(["dpkg-query", "-L"] + sorted(closure)).stdout.split()
    provided = {os.path.basename(f) for f in files if os.path.dirname(f) in LIB_DIRS}
    search = image.env.get("LD_LIBRARY_PATH", "").split(":")
    copied = {os.path.basename(p) for p in image.files if os.path.dirname(p) in search}
    checked = set()
    for f in image.files.values():
        with open(f.local_path, "rb") as elf:
            if elf.read(4) != b"\x7fELF":
                continue
        out = dl.run(["ldd", f.local_path]).stdout
        for line in out.splitlines():
            words = line.split()
            if not words or words[0].startswith("linux-vdso"):
                continue
            soname = os.path.basename(words[0])
            checked.add(soname)
            if "not found" in line:
                missing.append(f"{f.image_path}: {soname} not found by ldd on this machine either")
            elif soname not in provided and soname not in copied:
                missing.append(f"{f.image_path} loads {soname}: no runtime package of the image provides it")
    return sorted(set(missing)), len(checked)


class LocalRunTest(unittest.TestCase):
    """Each overlay's server as the cluster would run it, as a process on
    loopback: the rendered container's command line and environment, with
    the addresses moved to 127.0.0.1 ephemeral ports and the data volume to
    a temporary directory. Containers whose backend is cuda need a GPU."""

    def test_overlays_serve_export_their_metrics_and_restart_without_loss(self):
        ran = 0
        for overlay in dl.overlays():
            containers = dl.server_containers(overlay)
            if any(effective_settings(sc)["role"] != "standalone" for sc in containers):
                if not os.access(nats_server_binary(), os.X_OK):
                    print(f"overlay {overlay}: not run here: no nats-server (Debian package nats-server, scripts/install-deps.sh)")
                    continue
                with self.subTest(f"overlay {overlay}: the cluster"):
                    self.run_cluster(overlay, containers)
                    ran += 1
                continue
            for sc in containers:
                with self.subTest(sc.source):
                    settings = effective_settings(sc)
                    if settings["backend"] == "cuda" and dl.run(["sh", "-c", "nvidia-smi -L"]).returncode != 0:
                        print(f"{sc.source}: not run here: backend cuda and no usable GPU (nvidia-smi)")
                        continue
                    self.run_container(sc)
                    ran += 1
        self.assertGreater(ran, 0, "no overlay's server could run here")

    def run_container(self, sc):
        with tempfile.TemporaryDirectory(prefix="peakknn-deploy-") as tmp:
            server = LocalServer(sc, tmp)
            try:
                server.start()
                for service in sorted(server.probe_services()):
                    self.assertEqual(server.health(service), "SERVING", f"{sc.source}: health of {service!r}")
                if server.client_flags():
                    bare = dl.run([server.cli, f"--server=127.0.0.1:{server.port}", "list"], timeout=60)
                    self.assertNotEqual(bare.returncode, 0, f"{sc.source}: answered a client without its TLS CA and token")
                rows = 300
                server.traffic(rows)
                exported = dl.exposition_names(dl.http_get(f"http://127.0.0.1:{server.metrics_port}/metrics"))
                self.check_metrics(sc.overlay, sc.source, exported)
                # A rolling update: SIGTERM, exit 0 inside the grace period,
                # then the next pod on the same volume has every row.
                grace = sc.pod_spec.get("terminationGracePeriodSeconds", 30)
                rc, seconds = server.stop(grace)
                self.assertEqual(rc, 0, f"{sc.source}: exit after SIGTERM\n{server.log()}")
                self.assertLess(seconds, grace)
                server.start()
                self.assertEqual(server.live_rows(), rows, f"{sc.source}: rows after the restart")
                print(f"{sc.source}: SIGTERM exit 0 after {seconds:.1f} s (grace {grace} s); "
                      f"all {rows} acknowledged rows back after the restart")
                rc, _ = server.stop(grace)
                self.assertEqual(rc, 0)
            finally:
                server.kill()


    def check_metrics(self, overlay, source, exported):
        """Every metric a rule or panel of the overlay reads is in
        `exported` (the names of every scraped process), recorded by a
        rule, or another exporter's."""
        used, recorded = dl.used_metrics(dl.render(overlay))
        external = dl.external_metrics()
        absent = {
            name: where for name, where in used.items()
            if name not in exported and name not in recorded and name not in external
        }
        self.assertEqual(absent, {}, f"{source}: metrics the rules or dashboards read that the server does not export")
        self.assertFalse(external.keys() & exported, "a metric listed as external is exported by the server: drop it from external-metrics.txt")
        print(f"{source}: {len(used)} metric names used, all exported "
              f"(or recorded: {sorted(recorded)}; external: {sorted(used.keys() & external.keys())})")

    def run_cluster(self, overlay, containers):
        """The cluster overlay as processes on loopback: every NATS pod as a
        nats-server from the rendered configuration, every shard replica
        (up to 2 per shard) and one router from their containers' settings,
        with NATS addresses moved to the local servers. Through the router:
        create, insert, search; every role's /metrics together export what
        the rules and dashboards read; SIGTERM of every peakknn process exits
        0 inside its grace period, and a restart of all of them on the same
        data (NATS kept) has every row."""
        objects = dl.render(overlay)
        with tempfile.TemporaryDirectory(prefix="peakknn-deploy-cluster-") as tmp:
            nats = LocalNats(objects, os.path.join(tmp, "nats"))
            servers = []
            try:
                nats.start()
                print(f"overlay {overlay}: {len(nats.processes)} nats-server processes from "
                      f"{dl.name_of(nats.workload)}: every probe path answers 200, JetStream has a meta leader")
                shards = [sc for sc in containers if effective_settings(sc)["role"] == "shard"]
                routers = [sc for sc in containers if effective_settings(sc)["role"] == "router"]
                self.assertTrue(shards and routers, f"overlay {overlay}: shards {len(shards)}, routers {len(routers)}")
                for sc in shards:
                    for ordinal in range(min(2, sc.workload["spec"].get("replicas", 1))):
                        servers.append(self.cluster_member(sc, ordinal, objects, nats, tmp))
                router = self.cluster_member(routers[0], 0, objects, nats, tmp)
                servers.append(router)
                for server in servers:
                    server.start()
                    for service in sorted(server.probe_services()):
                        self.assertEqual(server.health(service), "SERVING", f"{server.name}: health of {service!r}")
                rows = 300
                router.traffic(rows)
                self.assertEqual(router.wait_live_rows(rows), rows, "live rows through the router")
                exported = set()
                used, recorded = dl.used_metrics(objects)
                wanted = used.keys() - recorded - dl.external_metrics().keys()
                for server in servers:
                    names = dl.exposition_names(dl.http_get(f"http://127.0.0.1:{server.metrics_port}/metrics"))
                    print(f"overlay {overlay}: {server.name}: {len(names)} series names on /metrics; "
                          f"of those the rules and dashboards read, not here: {sorted(wanted - names) or 'none'}")
                    exported |= names
                self.check_metrics(overlay, f"overlay {overlay} (router and shards)", exported)
                # A rolling update of every peakknn pod (NATS stays): the
                # router first, then the replicas.
                for server in [router] + servers[:-1]:
                    grace = server.sc.pod_spec.get("terminationGracePeriodSeconds", 30)
                    rc, seconds = server.stop(grace)
                    self.assertEqual(rc, 0, f"{server.name}: exit after SIGTERM\n{server.log()}")
                    self.assertLess(seconds, grace, server.name)
                for server in servers:
                    server.start()
                self.assertEqual(router.wait_live_rows(rows), rows, "live rows through the router after the restart")
                print(f"overlay {overlay}: {len(servers) - 1} shard replicas and the router: created, inserted "
                      f"{rows} rows and searched through the router; SIGTERM exit 0 each, all rows back after the restart")
                for server in servers:
                    rc, _ = server.stop(30)
                    self.assertEqual(rc, 0, f"{server.name}\n{server.log()}")
                stopped = nats.stop()
                if nats.container.get("lifecycle", {}).get("preStop"):
                    self.assertTrue(all(by_hook for by_hook, _ in stopped), f"nats: not stopped by the preStop hook: {stopped}")
                print(f"overlay {overlay}: nats-server processes stopped by their preStop hook in "
                      f"{', '.join(f'{t:.1f} s' for _, t in stopped)}")
            finally:
                for server in servers:
                    server.kill()
                nats.kill()

    def cluster_member(self, sc, ordinal, objects, nats, tmp):
        """A LocalServer for pod `ordinal` of a router or shard container:
        the environment that pod gets (its name), the NATS URLs moved to the
        local servers, and the advertised address left to the server (the
        loopback port it picks): the pod DNS name does not resolve here."""
        _, _, labels = next(x for x in dl.pod_templates(objects) if x[0] is sc.workload)
        identity = dl.pod_identity(sc.workload)
        pod = f"{sc.workload['metadata']['name']}-{ordinal}"
        env = dl.container_env(sc.container, labels, objects, sc.image, pod_name=pod, namespace=identity["namespace"])
        settings = effective_settings(sc)
        extra = [f"--nats_urls={nats.local_urls(settings['nats_urls'])}"]
        if settings["role"] == "shard":
            extra.append("--advertise_address=")
        return LocalServer(sc, os.path.join(tmp, pod), env=env, extra_args=extra, name=pod)


def nats_server_binary():
    return shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalNats:
    """The overlay's NATS StatefulSet as nats-server processes on loopback:
    each pod's configuration file is the rendered ConfigMap's, with every
    container port moved to a free loopback port of that pod, every route
    (nats://<pod>.<headless service>:<port>) to the loopback port of that
    pod, and every mounted path to a directory of its own."""

    def __init__(self, objects, tmp):
        self.objects, self.tmp = objects, tmp
        self.binary = nats_server_binary()
        found = [
            (w, spec, labels, c) for w, spec, labels in dl.pod_templates(objects) for c in spec["containers"]
            if os.path.basename((c.get("command") or [""])[0]) == "nats-server"
        ]
        if len(found) != 1:
            raise dl.CheckError(f"expected one container running nats-server, found {len(found)}")
        self.workload, self.spec, self.labels, self.container = found[0]
        if self.workload["kind"] != "StatefulSet":
            raise dl.CheckError(f"{dl.name_of(self.workload)}: NATS pods need stable names (a StatefulSet)")
        self.replicas = self.workload["spec"].get("replicas", 1)
        self.container_ports = {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}
        # pod ordinal -> {container port: loopback port}
        self.ports = [{port: free_port() for port in self.container_ports.values()} for _ in range(self.replicas)]
        self.processes = []

    def config_text(self):
        """The configuration file the container's --config names, from the
        ConfigMap volume mounted there."""
        argv = self.container["command"] + list(self.container.get("args") or [])
        flag = next((i for i, a in enumerate(argv) if a in ("--config", "-c")), None)
        if flag is None:
            raise dl.CheckError(f"{dl.name_of(self.workload)}: nats-server runs without --config")
        path = argv[flag + 1]
        mount = mounts_for(self.container, path)
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        volume = volumes.get(mount[-1]["name"]) if mount else None
        if not volume or "configMap" not in volume:
            raise dl.CheckError(f"{dl.name_of(self.workload)}: {path} is on no ConfigMap volume")
        cm = dl.find(self.objects, "ConfigMap", volume["configMap"]["name"])
        key = os.path.relpath(path, mount[-1]["mountPath"])
        if cm is None or key not in cm.get("data", {}):
            raise dl.CheckError(f"{dl.name_of(self.workload)}: ConfigMap {volume['configMap']['name']} has no key {key}")
        return argv, flag, cm["data"][key]

    def pod_port(self, host, port):
        """The loopback port for <pod DNS name>:<container port>, or None."""
        target = dl.resolve_host(self.objects, host)
        if target and target[0] == "pod" and target[1] is self.workload:
            return self.ports[target[2]].get(port)
        if target and target[0] == "service" and dl.selects(target[1]["spec"].get("selector", {}), self.labels):
            svc_port = next((p for p in target[1]["spec"].get("ports", []) if p["port"] == port), None)
            if svc_port is not None:
                wanted = svc_port.get("targetPort", port)
                return self.ports[0].get(self.container_ports.get(wanted, wanted))
        return None

    def local_urls(self, urls):
        out = []
        for url in urls.split(","):
            m = re.fullmatch(r"nats://([^:/]+):(\d+)", url)
            port = self.pod_port(m.group(1), int(m.group(2))) if m else None
            if port is None:
                raise dl.CheckError(f"nats URL {url} names no NATS pod or Service of the overlay")
            out.append(f"nats://127.0.0.1:{port}")
        return ",".join(out)

    def start(self):
        argv, flag, text = self.config_text()
        for ordinal in range(self.replicas):
            pod = f"{self.workload['metadata']['name']}-{ordinal}"
            root = os.path.join(self.tmp, pod)
            local = text
            # Listen addresses: a container port on every interface.
            for port, mine in self.ports[ordinal].items():
                local = re.sub(rf"(?<![\w.])(0\.0\.0\.0|\[::\])?:{port}\b", f"127.0.0.1:{mine}", local)

            def route(m):
                port = self.pod_port(m.group(1), int(m.group(2)))
                if port is None:
                    raise dl.CheckError(f"{pod}: nats.conf names {m.group(0)}, no NATS pod of the overlay")
                return f"nats://127.0.0.1:{port}"

            local = re.sub(r"nats://([A-Za-z][\w.-]*):(\d+)", route, local)
            local = self.local_paths(local, ordinal)
            conf = os.path.join(root, "nats.conf")
            with open(conf, "w") as f:
                f.write(local)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            env.update(dl.container_env(self.container, self.labels, self.objects, None, pod_name=pod))
            args = list(argv[1:])
            args[flag] = conf  # the value after --config (argv[flag] in args is at flag - 1)
            check = dl.run([self.binary, "-t"] + args, env=env, timeout=30)
            if check.returncode != 0:
                raise dl.CheckError(f"{pod}: nats-server -t rejects the rendered configuration:\n{check.stdout}{check.stderr}\n{local}")
            with open(os.path.join(root, "nats.log"), "a") as log:
                self.processes.append(subprocess.Popen([self.binary] + args, env=env, stdout=log, stderr=subprocess.STDOUT))
        # Every probe's path answers 200 (the startup probe waits for
        # JetStream to be current: a meta leader, streams caught up).
        deadline = time.monotonic() + 60
        probes = [self.container[p]["httpGet"] for p in ("startupProbe", "readinessProbe", "livenessProbe") if "httpGet" in self.container.get(p, {})]
        if not probes:
            raise dl.CheckError(f"{dl.name_of(self.workload)}: no httpGet probes to wait on")
        for ordinal in range(self.replicas):
            for probe in probes:
                port = self.container_ports.get(probe["port"], probe["port"])
                url = f"http://127.0.0.1:{self.ports[ordinal][port]}{probe.get('path', '/')}"
                while True:
                    try:
                        dl.http_get(url, timeout=5)
                        break
                    except OSError as e:
                        if self.processes[ordinal].poll() is not None or time.monotonic() > deadline:
                            raise dl.CheckError(f"nats pod {ordinal}: {url}: {e}\n{self.log(ordinal)}")
                        time.sleep(0.2)
        # And the JetStream cluster has a meta leader (what the streams and
        # buckets of --nats_replicas 3 need), on the monitoring port.
        monitor = self.container_ports.get(probes[0]["port"], probes[0]["port"])
        while '"leader": "' not in dl.http_get(f"http://127.0.0.1:{self.ports[0][monitor]}/jsz"):
            if time.monotonic() > deadline:
                raise dl.CheckError(f"no JetStream meta leader after 60 s\n{self.log(0)}")
            time.sleep(0.2)

    def local_paths(self, text, ordinal):
        """Every mounted path in `text` moved to a directory of pod
        `ordinal`'s own."""
        root = os.path.join(self.tmp, f"{self.workload['metadata']['name']}-{ordinal}")
        for m in sorted(self.container.get("volumeMounts", []), key=lambda m: -len(m["mountPath"])):
            directory = os.path.join(root, m["name"])
            os.makedirs(directory, exist_ok=True)
            text = re.sub(rf"(?<![\w/]){re.escape(m['mountPath'].rstrip('/'))}(?=/|\s|$)", directory, text)
        return text

    def stop(self):
        """Stops every server as the kubelet would: the preStop hook (lame
        duck mode, through the pid file), then SIGTERM if it is still up.
        Returns, per pod, whether it exited on the preStop hook alone, and
        how long it took."""
        grace = self.spec.get("terminationGracePeriodSeconds", 30)
        hook = self.container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        results = []
        for ordinal, process in enumerate(self.processes):
            start = time.monotonic()
            by_hook = False
            if hook:
                argv = [self.binary if a == "nats-server" else self.local_paths(a, ordinal) for a in hook]
                p = dl.run(argv, timeout=30)
                if p.returncode != 0:
                    raise dl.CheckError(f"nats pod {ordinal}: preStop {' '.join(hook)} failed: {p.stdout}{p.stderr}")
                try:
                    process.wait(timeout=grace)
                    by_hook = True
                except subprocess.TimeoutExpired:
                    pass
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=grace)
            results.append((by_hook, time.monotonic() - start))
        return results

    def log(self, ordinal):
        pod = f"{self.workload['metadata']['name']}-{ordinal}"
        with open(os.path.join(self.tmp, pod, "nats.log")) as f:
            return f.read()[-4000:]

    def kill(self):
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def secret_fixture(secret, directory):
    """Makes in `directory` the files the Secret `secret` holds in a real
    deployment (deploy/components/*), and returns `directory`:
      peakknn-tls     tls.crt, tls.key (for 127.0.0.1 and localhost) and
                      ca.crt, from a fresh CA made with openssl
      peakknn-tokens  tokens: one admin, one read token"""
    os.makedirs(directory)
    if secret == "peakknn-tls":
        def openssl(*args):
            p = dl.run(["openssl"] + list(args), cwd=directory)
            if p.returncode != 0:
                raise dl.CheckError(f"openssl {' '.join(args)}: {p.stderr}")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=peakknn test CA",
                "-keyout", "ca.key", "-out", "ca.crt")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=peakknn", "-keyout", "tls.key", "-out", "tls.csr")
        with open(os.path.join(directory, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "san.ext", "-out", "tls.crt")
    elif secret == "peakknn-tokens":
        with open(os.path.join(directory, "tokens"), "w") as f:
            f.write(f"admin {os.urandom(16).hex()}\nread {os.urandom(16).hex()}\n")
    else:
        raise dl.CheckError(f"Secret {secret}: the local run has no fixture for it (add one to secret_fixture)")
    return directory


class LocalServer:
    """A server container's process on loopback (see LocalRunTest)."""

    COLLECTION = "deploycheck"

    def __init__(self, sc, tmp, env=None, extra_args=(), name=None):
        """env: the pod's environment when not the workload's first pod's
        (sc.env); extra_args: flags that move what the pod reaches (NATS) to
        loopback, after the container's own (flags win over variables);
        name: the pod's, for messages."""
        self.sc, self.tmp = sc, tmp
        self.name = name or sc.source
        self.env = sc.env if env is None else env
        self.extra_args = list(extra_args)
        os.makedirs(tmp, exist_ok=True)
        self.process = None
        self.cli = os.environ.get("PEAKKNN_CLI_BIN", os.path.join(dl.BUILD_DIR, "client", "peakknn"))
        # Secret volumes: mount path -> a local directory holding the files
        # a real Secret of that name would (secret_fixture).
        self.secret_dirs = {
            mount: secret_fixture(secret, os.path.join(tmp, "secrets", secret))
            for mount, secret in dl.secret_mounts(sc).items()
        }

    def start(self):
        ports = os.path.join(self.tmp, "ports")
        if os.path.exists(ports):
            os.unlink(ports)
        # Flags on the command line win over the environment.
        # Paths of files in the image (the CUDA plugin) are where the same
        # files are here.
        args = [self.local_setting(a) for a in self.sc.argv[1:]]
        argv = [self.sc.binary] + args + [
            "--listen=127.0.0.1:0",
            "--metrics_listen=127.0.0.1:0",
            f"--data_dir={self.tmp}/data",
            f"--port_file={ports}",
        ] + self.extra_args
        if self.env.get("PEAKKNN_HEALTH_LISTEN"):
            argv.append("--health_listen=127.0.0.1:0")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update({k: self.local_setting(v) for k, v in self.env.items()})
        with open(os.path.join(self.tmp, "server.log"), "a") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not os.path.exists(ports):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise dl.CheckError(f"{self.sc.source}: the server did not start:\n{self.log()}")
            time.sleep(0.05)
        with open(ports) as f:
            self.port, self.metrics_port, self.health_port = (int(x) for x in f.read().split())
        # Serving = recovery done: poll the readiness probe's service.
        while self.health(self.readiness_service()) != "SERVING":
            if time.monotonic() > deadline:
                raise dl.CheckError(f"{self.sc.source}: not SERVING after 60 s:\n{self.log()}")
            time.sleep(0.1)

    def local_setting(self, value):
        flag, eq, path = value.partition("=") if value.startswith("--") else ("", "", value)
        local = self.local_path(path) if path.startswith("/") else None
        return f"{flag}{eq}{local}" if local else value

    def local_path(self, path):
        """Where a path in the container is here: a file the image copies
        in, or one in a mounted Secret's fixture; None otherwise."""
        for mount, local in self.secret_dirs.items():
            if path.startswith(mount.rstrip("/") + "/"):
                return os.path.join(local, os.path.relpath(path, mount))
        return self.sc.image.local(path)

    def client_flags(self):
        """What the CLI needs to talk to this server: the CA of its TLS
        certificate, an admin token."""
        flags = []
        cert = self.env.get("PEAKKNN_TLS_CERT_FILE")
        if cert:
            flags.append(f"--tls_ca={os.path.join(os.path.dirname(self.local_path(cert)), 'ca.crt')}")
        tokens = self.env.get("PEAKKNN_AUTH_TOKENS_FILE")
        if tokens:
            with open(self.local_path(tokens)) as f:
                admin = next(line.split()[1] for line in f if line.split()[:1] == ["admin"])
            flags.append(f"--token={admin}")
        return flags

    def probe_services(self):
        return {self.sc.container[p]["grpc"].get("service", "") for p in ("startupProbe", "readinessProbe", "livenessProbe")}

    def readiness_service(self):
        return self.sc.container["readinessProbe"]["grpc"].get("service", "")

    def health(self, service):
        """grpc.health.v1.Health/Check as the kubelet's gRPC probe calls it."""
        import grpc  # python3-grpcio; the messages are encoded by hand

        request = b"" if not service else b"\x0a" + bytes([len(service)]) + service.encode()
        port = self.health_port or self.port  # where the probes ask
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)]) as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            try:
                response = check(request, timeout=5)
            except grpc.RpcError as e:
                return f"error {e.code().name}"
        return {b"\x08\x01": "SERVING", b"\x08\x02": "NOT_SERVING"}.get(response, f"status bytes {response!r}")

    def peakknn(self, *args):
        p = dl.run([self.cli, f"--server=127.0.0.1:{self.port}"] + self.client_flags() + list(args), timeout=60)
        if p.returncode != 0:
            raise dl.CheckError(f"peakknn {' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
        return p.stdout

    def traffic(self, rows):
        """A collection, an insert and searches, so that every labelled
        series and histogram the rules read exists."""
        data = os.path.join(self.tmp, "rows.csv")
        with open(data, "w") as f:
            for i in range(rows):
                f.write(",".join(str((i * 7 + d * 3) % 11) for d in range(8)) + "\n")
        self.peakknn("create", self.COLLECTION, "--dim=8", "--metric=l2")
        self.peakknn("insert", self.COLLECTION, data, "--progress=false")
        out = self.peakknn("search", self.COLLECTION, data, "-k", "5", "--format=json")
        if not out.strip():
            raise dl.CheckError("search printed nothing")

    def wait_live_rows(self, rows, seconds=60):
        """live_rows once it reaches `rows` (a cluster's replicas apply
        their streams asynchronously), or what it is after `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                live = self.live_rows()
            except dl.CheckError:
                live = None
            if live == rows or time.monotonic() > deadline:
                return live
            time.sleep(0.5)

    def live_rows(self):
        lines = self.peakknn("describe", self.COLLECTION).splitlines()
        header = lines[0].split()
        row = next(line.split() for line in lines[1:] if line.split()[:1] == [self.COLLECTION])
        return int(row[header.index("live_rows")])

    def stop(self, grace):
        """SIGTERM; the exit code and how long the shutdown took."""
        start = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            rc = self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            rc = self.process.wait()
        return rc, time.monotonic() - start

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self):
        with open(os.path.join(self.tmp, "server.log")) as f:
            return f.read()


class SelfTest(unittest.TestCase):
    def test_resolve_host(self):
        objects = [
            {"kind": "StatefulSet", "metadata": {"name": "db", "namespace": "ns"}, "spec": {"serviceName": "db-h", "replicas": 2}},
            {"kind": "Service", "metadata": {"name": "db-h", "namespace": "ns"}, "spec": {"clusterIP": "None"}},
            {"kind": "Service", "metadata": {"name": "web", "namespace": "ns"}, "spec": {}},
        ]
        sts = objects[0]
        self.assertEqual(dl.resolve_host(objects, "db-1.db-h"), ("pod", sts, 1))
        self.assertEqual(dl.resolve_host(objects, "db-0.db-h.ns.svc"), ("pod", sts, 0))
        self.assertEqual(dl.resolve_host(objects, "db-0.db-h.ns.svc.cluster.local"), ("pod", sts, 0))
        self.assertEqual(dl.resolve_host(objects, "web.ns.svc")[:2], ("service", objects[2]))
        for host in ("db-2.db-h", "db-0.web", "db-0.db-h.other.svc", "nothing"):
            self.assertIsNone(dl.resolve_host(objects, host), host)

    def test_metric_names(self):
        cases = {
            'histogram_quantile(0.99, sum by (namespace, pod, le) (rate(a_bucket{job="x", method=~"A|B"}[5m]))) > 0.25':
                {"a_bucket"},
            "sum(rate(b_total[$__rate_interval])) / sum(rate(c_total{x=\"y\"}[1m] offset 5m)) / 1e9": {"b_total", "c_total"},
            'label_values(d_info{job="peakknn", namespace=~"$namespace"}, pod)': {"d_info"},
            "label_values(namespace)": set(),
            "absent(up{job=\"peakknn\"})": {"up"},
            "x:recorded:ratio < 0.05 and on (pod) y == 0": {"x:recorded:ratio", "y"},
            "e / ignoring (code) group_left f": {"e", "f"},
        }
        for expr, names in cases.items():
            self.assertEqual(dl.metric_names(expr), names, expr)

    def test_exposition_names(self):
        text = "# HELP a_seconds x\n# TYPE a_seconds histogram\na_seconds_bucket{le=\"1\"} 1\na_seconds_sum 2\nb{c=\"d\"} 3\n"
        self.assertEqual(dl.exposition_names(text), {"a_seconds_bucket", "a_seconds_sum", "b"})

    def test_dockerfile_parser_and_source_map(self):
        stages = dl.parse_dockerfile(
            "# c\nFROM debian:12 AS deps\nWORKDIR /src\nFROM deps AS build\nCOPY . /src\n"
            "RUN cmake -S . -B build \\\n  # inside\n  -DX=1 && ninja -C build\n"
            "FROM debian:12-slim AS run\nRUN apt-get update && apt-get install -y --no-install-recommends \\\n  liba libb && rm -rf x\n"
            "ENV A=1 B=2\nUSER 10:10\nCOPY --from=build /src/build/bin/x /opt/x\nENTRYPOINT [\"/opt/x\"]\n"
        )
        self.assertEqual([s.name for s in stages], ["deps", "build", "run"])
        df = dl.Dockerfile.__new__(dl.Dockerfile)
        df.stages, df.by_name = stages, {s.name: s for s in stages}
        image = df.image("run")
        self.assertEqual(image.apt_packages, ["liba", "libb"])
        self.assertEqual(image.env, {"A": "1", "B": "2"})
        self.assertEqual(image.user, "10:10")
        self.assertEqual(image.entrypoint, ["/opt/x"])
        self.assertEqual(image.local("/opt/x"), os.path.join(dl.BUILD_DIR, "bin", "x"))

    def test_container_env_resolution(self):
        objects = [{"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"PEAKKNN_A": "1", "PEAKKNN_B": "2"}}]
        container = {
            "name": "c",
            "envFrom": [{"configMapRef": {"name": "cm"}}],
            "env": [
                {"name": "PEAKKNN_B", "value": "3"},
                {"name": "PEAKKNN_T", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1"}}},
                {"name": "PEAKKNN_S", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}},
            ],
            "resources": {"limits": {"cpu": "1500m"}},
        }
        image = dl.Image("t", [], {}, {"PEAKKNN_A": "0", "PEAKKNN_C": "9"}, [], True, "1")
        env = dl.container_env(container, {}, objects, image)
        self.assertEqual(env, {"PEAKKNN_A": "1", "PEAKKNN_B": "3", "PEAKKNN_C": "9", "PEAKKNN_T": "2", "PEAKKNN_S": "0"})
        pod = {
            "name": "c",
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "A", "value": "$(POD_NAME).svc:1 $$(POD_NAME) $(LATER) $(PEAKKNN_C)"},
                {"name": "LATER", "value": "x"},
            ],
        }
        env = dl.container_env(pod, {}, objects, image, pod_name="s-0")
        # PEAKKNN_C is the image's ENV, which the kubelet does not see.
        self.assertEqual(env["A"], "s-0.svc:1 $(POD_NAME) $(LATER) $(PEAKKNN_C)")
        with self.assertRaisesRegex(dl.CheckError, "ConfigMap missing"):
            dl.container_env({"name": "c", "envFrom": [{"configMapRef": {"name": "missing"}}]}, {}, objects, image)


if __name__ == "__main__":
    unittest.main()
