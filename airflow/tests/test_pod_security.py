"""The restricted Pod Security Standard checker (pod_security.py): a compliant pod passes, and
each control, broken alone, is reported under its own name."""

import copy

import pytest
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

from pod_security import restricted_violations

RESTRICTED_CONTAINER_CONTEXT = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
# The pipeline's task pod: pod-level identity and seccomp, container-level the rest, and the
# XCom sidecar that KubernetesPodOperator adds, with the same container context.
COMPLIANT = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [
        {
            "name": "base",
            "image": "registry/marketing-pipeline:1.0.0",
            "securityContext": RESTRICTED_CONTAINER_CONTEXT,
            "volumeMounts": [
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "work", "mountPath": "/work"},
                {"name": "xcom", "mountPath": "/airflow/xcom"},
            ],
        },
        {
            "name": "airflow-xcom-sidecar",
            "image": "alpine:3.24.2",
            "securityContext": RESTRICTED_CONTAINER_CONTEXT,
        },
    ],
    "volumes": [
        {"name": "tmp", "emptyDir": {}},
        {"name": "work", "emptyDir": {}},
        {"name": "xcom", "emptyDir": {}},
        {"name": "settings", "configMap": {"name": "marketing-pipeline-config"}},
        {"name": "token", "projected": {"sources": []}},
    ],
}


def spec_with(change) -> dict:
    spec = copy.deepcopy(COMPLIANT)
    change(spec)
    return spec


def base(spec: dict) -> dict:
    return spec["containers"][0]


def base_context(spec: dict) -> dict:
    return base(spec)["securityContext"]


def test_the_compliant_pod_passes():
    assert restricted_violations(COMPLIANT) == []


def test_a_pod_built_with_the_kubernetes_client_is_read_in_camel_case():
    pod = k8s.V1Pod(
        spec=k8s.V1PodSpec(
            security_context=k8s.V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=65532,
                seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
            ),
            containers=[
                k8s.V1Container(
                    name="base",
                    image="registry/marketing-pipeline:1.0.0",
                    security_context=k8s.V1SecurityContext(
                        allow_privilege_escalation=False,
                        capabilities=k8s.V1Capabilities(drop=["ALL"]),
                    ),
                )
            ],
            volumes=[k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource())],
        )
    )
    spec = ApiClient().sanitize_for_serialization(pod)["spec"]
    assert restricted_violations(spec) == []
    spec["hostPID"] = True
    assert restricted_violations(spec) == ["Host Namespaces: the pod sets hostPID=true"]


def set_pod_context(field, value):
    return lambda spec: spec["securityContext"].__setitem__(field, value)


def set_base_context(field, value):
    return lambda spec: base_context(spec).__setitem__(field, value)


def add_volume(volume):
    return lambda spec: spec["volumes"].append(volume)


BROKEN_CONTROLS = {
    "pod hostProcess": ("HostProcess", set_pod_context("windowsOptions", {"hostProcess": True})),
    "container hostProcess": (
        "HostProcess",
        set_base_context("windowsOptions", {"hostProcess": True}),
    ),
    "hostNetwork": ("Host Namespaces", lambda spec: spec.update(hostNetwork=True)),
    "hostPID": ("Host Namespaces", lambda spec: spec.update(hostPID=True)),
    "hostIPC": ("Host Namespaces", lambda spec: spec.update(hostIPC=True)),
    "privileged": ("Privileged Containers", set_base_context("privileged", True)),
    "no drop ALL": ("Capabilities", set_base_context("capabilities", {"drop": ["NET_RAW"]})),
    "no capabilities": ("Capabilities", lambda spec: base_context(spec).pop("capabilities")),
    "adds SYS_ADMIN": (
        "Capabilities",
        set_base_context("capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
    ),
    # In Docker's default set, so baseline allows it; restricted allows NET_BIND_SERVICE only.
    "adds CHOWN": (
        "Capabilities",
        set_base_context("capabilities", {"drop": ["ALL"], "add": ["CHOWN"]}),
    ),
    "hostPath": ("HostPath Volumes", add_volume({"name": "h", "hostPath": {"path": "/"}})),
    "nfs": ("Volume Types", add_volume({"name": "n", "nfs": {"server": "x", "path": "/"}})),
    "gitRepo": ("Volume Types", add_volume({"name": "g", "gitRepo": {"repository": "x"}})),
    "hostPort": (
        "Host Ports",
        lambda spec: base(spec).update(ports=[{"containerPort": 80, "hostPort": 8080}]),
    ),
    "pod AppArmor": ("AppArmor", set_pod_context("appArmorProfile", {"type": "Unconfined"})),
    "container AppArmor": (
        "AppArmor",
        set_base_context("appArmorProfile", {"type": "Unconfined"}),
    ),
    "SELinux type": ("SELinux", set_pod_context("seLinuxOptions", {"type": "spc_t"})),
    "SELinux user": ("SELinux", set_base_context("seLinuxOptions", {"user": "system_u"})),
    "SELinux role": ("SELinux", set_base_context("seLinuxOptions", {"role": "sysadm_r"})),
    "procMount": ("/proc Mount Type", set_base_context("procMount", "Unmasked")),
    "pod seccomp Unconfined": (
        "Seccomp",
        set_pod_context("seccompProfile", {"type": "Unconfined"}),
    ),
    "container seccomp overrides the pod's": (
        "Seccomp",
        set_base_context("seccompProfile", {"type": "Unconfined"}),
    ),
    "no seccomp anywhere": ("Seccomp", lambda spec: spec["securityContext"].pop("seccompProfile")),
    "unsafe sysctl": (
        "Sysctls",
        set_pod_context("sysctls", [{"name": "kernel.msgmax", "value": "65536"}]),
    ),
    "allowPrivilegeEscalation true": (
        "Privilege Escalation",
        set_base_context("allowPrivilegeEscalation", True),
    ),
    "allowPrivilegeEscalation unset": (
        "Privilege Escalation",
        lambda spec: base_context(spec).pop("allowPrivilegeEscalation"),
    ),
    "pod runAsNonRoot false": ("Running as Non-root", set_pod_context("runAsNonRoot", False)),
    "runAsNonRoot unset": (
        "Running as Non-root",
        lambda spec: spec["securityContext"].pop("runAsNonRoot"),
    ),
    "container runAsNonRoot overrides the pod's": (
        "Running as Non-root",
        set_base_context("runAsNonRoot", False),
    ),
    "pod runAsUser 0": ("Running as Non-root user", set_pod_context("runAsUser", 0)),
    "container runAsUser 0 overrides the pod's": (
        "Running as Non-root user",
        set_base_context("runAsUser", 0),
    ),
    "probe host": (
        "Host Probes / Lifecycle Hooks",
        lambda spec: base(spec).update(
            livenessProbe={"httpGet": {"port": 80, "host": "169.254.169.254"}}
        ),
    ),
    "lifecycle host": (
        "Host Probes / Lifecycle Hooks",
        lambda spec: base(spec).update(
            lifecycle={"preStop": {"tcpSocket": {"port": 80, "host": "10.0.0.1"}}}
        ),
    ),
}


@pytest.mark.parametrize(("control", "change"), BROKEN_CONTROLS.values(), ids=list(BROKEN_CONTROLS))
def test_each_broken_control_is_reported_under_its_name(control, change):
    violations = restricted_violations(spec_with(change))
    assert violations, f"{control} broken, nothing reported"
    assert all(violation.startswith(f"{control}: ") for violation in violations), violations


@pytest.mark.parametrize("field", ["initContainers", "ephemeralContainers"])
def test_init_and_ephemeral_containers_are_checked_too(field):
    spec = spec_with(lambda spec: spec.update({field: [{"name": "extra", "image": "busybox"}]}))
    controls = {violation.split(":")[0] for violation in restricted_violations(spec)}
    # The pod-level runAsNonRoot and seccomp cover it; the container-only fields do not.
    assert controls == {"Capabilities", "Privilege Escalation"}
    assert all("container 'extra'" in v for v in restricted_violations(spec))


ALLOWED_CHANGES = {
    "adds NET_BIND_SERVICE": set_base_context(
        "capabilities", {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    ),
    "container sets what the pod leaves unset": lambda spec: (
        spec["securityContext"].clear(),
        base_context(spec).update(
            runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "p"}
        ),
        spec["containers"].pop(),
    ),
    "AppArmor RuntimeDefault": set_pod_context("appArmorProfile", {"type": "RuntimeDefault"}),
    "SELinux container_t": set_pod_context("seLinuxOptions", {"type": "container_t"}),
    "procMount Default": set_base_context("procMount", "Default"),
    "safe sysctl": set_pod_context("sysctls", [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]),
    "hostPort 0": lambda spec: base(spec).update(ports=[{"containerPort": 80, "hostPort": 0}]),
    "probe without host": lambda spec: base(spec).update(livenessProbe={"httpGet": {"port": 80}}),
    "persistentVolumeClaim": add_volume(
        {"name": "p", "persistentVolumeClaim": {"claimName": "data"}}
    ),
}


@pytest.mark.parametrize("change", ALLOWED_CHANGES.values(), ids=list(ALLOWED_CHANGES))
def test_what_the_profile_allows_passes(change):
    assert restricted_violations(spec_with(change)) == []


def test_sysctls_and_probe_hosts_follow_the_policy_version():
    newer_sysctl = set_pod_context("sysctls", [{"name": "net.ipv4.tcp_keepalive_time"}])
    assert restricted_violations(spec_with(newer_sysctl), "1.29") == []
    assert restricted_violations(spec_with(newer_sysctl), "1.28") != []
    probe_host = BROKEN_CONTROLS["probe host"][1]
    assert restricted_violations(spec_with(probe_host), "1.33") == []
    assert restricted_violations(spec_with(probe_host), "1.34") != []
    with pytest.raises(ValueError, match="1.25"):
        restricted_violations(COMPLIANT, "1.24")


def test_a_user_namespace_relaxes_the_non_root_controls_from_1_35():
    def root_in_user_namespace(spec):
        spec["hostUsers"] = False
        spec["securityContext"].update(runAsNonRoot=False, runAsUser=0)

    assert restricted_violations(spec_with(root_in_user_namespace), "1.35") == []
    controls = {
        v.split(":")[0] for v in restricted_violations(spec_with(root_in_user_namespace), "1.34")
    }
    assert controls == {"Running as Non-root", "Running as Non-root user"}


def test_windows_pods_are_exempt_from_the_linux_only_controls():
    def windows_pod(spec):
        spec["os"] = {"name": "windows"}
        spec["securityContext"].pop("seccompProfile")
        for container in spec["containers"]:
            container["securityContext"] = {}

    assert restricted_violations(spec_with(windows_pod)) == []
