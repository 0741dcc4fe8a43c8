"""The Kubernetes "restricted" Pod Security Standard, checked on a PodSpec.

The controls are those of kubernetes.io/docs/concepts/security/pod-security-standards/
(baseline and restricted), checked as the Pod Security Admission controller checks them
(k8s.io/pod-security-admission, policy/check_*.go): a container's own securityContext
decides where it sets a field, the pod's securityContext where it does not; init and
ephemeral containers are checked like the others. Where the restricted profile replaces a
baseline control (capabilities, volumes, seccomp, /proc mount), only the restricted one is
checked.

The spec is the camelCase dict of a PodSpec: from YAML, or from
`ApiClient().sanitize_for_serialization(pod)["spec"]`. The deprecated AppArmor and seccomp
annotations live in the pod's metadata, not its spec, and are not checked.
"""

from collections.abc import Iterator

# The newest Kubernetes minor whose policy changes are modelled below.
NEWEST_POLICY = "1.37"
# Pod Security Admission is stable from 1.25; older clusters enforce nothing of this.
OLDEST_POLICY = (1, 25)

ALLOWED_ADDED_CAPABILITY = "NET_BIND_SERVICE"
ALLOWED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
ALLOWED_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
# The "safe" sysctls, by the Kubernetes minor that first allows them.
SAFE_SYSCTLS_SINCE = {
    (1, 0): {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    },
    (1, 27): {"net.ipv4.ip_local_reserved_ports"},
    (1, 29): {
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    },
    (1, 32): {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"},
    (1, 37): {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"},
}
SELINUX_TYPES_SINCE = {
    (1, 0): {"", "container_t", "container_init_t", "container_kvm_t"},
    (1, 31): {"container_engine_t"},
}


def restricted_violations(pod_spec: dict, kubernetes_version: str = NEWEST_POLICY) -> list[str]:
    """Every way `pod_spec` breaks the restricted profile, each as "<control>: <what>".

    `kubernetes_version` ("MAJOR.MINOR") is the policy version, as in the namespace label
    `pod-security.kubernetes.io/enforce-version`: newer minors allow more sysctls and
    SELinux types, relax the non-root controls for pods in a user namespace
    (`hostUsers: false`, 1.35+) and add the probe / lifecycle host control (1.34+).
    """
    version = _minor(kubernetes_version)
    pod_context = pod_spec.get("securityContext") or {}
    containers = list(_containers(pod_spec))
    # Pod API validation rejects these fields on Windows pods, so PSA exempts them (1.25+).
    windows = (pod_spec.get("os") or {}).get("name") == "windows"
    user_namespace = version >= (1, 35) and pod_spec.get("hostUsers") is False
    checks = [
        _host_process(pod_context, containers),
        _host_namespaces(pod_spec),
        _privileged(containers),
        _volumes(pod_spec.get("volumes") or []),
        _host_ports(containers),
        _apparmor(pod_context, containers),
        _selinux(pod_context, containers, _since(SELINUX_TYPES_SINCE, version)),
        _proc_mount(containers),
        _sysctls(pod_context, _since(SAFE_SYSCTLS_SINCE, version)),
    ]
    if version >= (1, 34):
        checks.append(_probe_and_lifecycle_hosts(containers))
    if not windows:
        checks += [
            _capabilities(containers),
            _seccomp(pod_context, containers),
            _privilege_escalation(containers),
        ]
    if not user_namespace:
        checks += [_run_as_non_root(pod_context, containers), _run_as_user(pod_context, containers)]
    return [violation for check in checks for violation in check]


def _minor(version: str) -> tuple[int, int]:
    major, minor = (int(part) for part in version.removeprefix("v").split(".")[:2])
    if (major, minor) < OLDEST_POLICY:
        raise ValueError(f"policy version {version}: Pod Security Admission is 1.25+")
    return major, minor


def _since(values_since: dict[tuple[int, int], set[str]], version: tuple[int, int]) -> set[str]:
    return {value for since, values in values_since.items() if since <= version for value in values}


def _containers(pod_spec: dict) -> Iterator[tuple[str, dict]]:
    """(label, container) for every init, regular and ephemeral container."""
    for field, kind in (
        ("initContainers", "init container"),
        ("containers", "container"),
        ("ephemeralContainers", "ephemeral container"),
    ):
        for container in pod_spec.get(field) or []:
            yield f"{kind} {container.get('name', '?')!r}", container


def _context(container: dict) -> dict:
    return container.get("securityContext") or {}


def _host_process(pod_context: dict, containers) -> Iterator[str]:
    if (pod_context.get("windowsOptions") or {}).get("hostProcess") is True:
        yield "HostProcess: the pod sets windowsOptions.hostProcess=true"
    for label, container in containers:
        if (_context(container).get("windowsOptions") or {}).get("hostProcess") is True:
            yield f"HostProcess: {label} sets windowsOptions.hostProcess=true"


def _host_namespaces(pod_spec: dict) -> Iterator[str]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(field) is True:
            yield f"Host Namespaces: the pod sets {field}=true"


def _privileged(containers) -> Iterator[str]:
    for label, container in containers:
        if _context(container).get("privileged") is True:
            yield f"Privileged Containers: {label} sets privileged=true"


def _volumes(volumes: list[dict]) -> Iterator[str]:
    for volume in volumes:
        sources = set(volume) - {"name"}
        if "hostPath" in sources:
            yield f"HostPath Volumes: volume {volume.get('name')!r} is a hostPath"
        elif not sources & ALLOWED_VOLUME_SOURCES:
            kind = ", ".join(sorted(sources)) or "no source"
            yield f"Volume Types: volume {volume.get('name')!r} is of a restricted type ({kind})"


def _host_ports(containers) -> Iterator[str]:
    for label, container in containers:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                yield f"Host Ports: {label} uses hostPort {port['hostPort']}"


def _apparmor(pod_context: dict, containers) -> Iterator[str]:
    setters = [("the pod", pod_context)] + [(label, _context(c)) for label, c in containers]
    for label, context in setters:
        profile = context.get("appArmorProfile")
        if profile is not None and profile.get("type") not in ALLOWED_APPARMOR_TYPES:
            yield f"AppArmor: {label} sets appArmorProfile.type={profile.get('type')!r}"


def _selinux(pod_context: dict, containers, allowed_types: set[str]) -> Iterator[str]:
    setters = [("the pod", pod_context)] + [(label, _context(c)) for label, c in containers]
    for label, context in setters:
        options = context.get("seLinuxOptions")
        if options is None:
            continue
        if (options.get("type") or "") not in allowed_types:
            yield f"SELinux: {label} sets seLinuxOptions.type={options['type']!r}"
        for field in ("user", "role"):
            if options.get(field):
                yield f"SELinux: {label} sets seLinuxOptions.{field}"


def _proc_mount(containers) -> Iterator[str]:
    for label, container in containers:
        proc_mount = _context(container).get("procMount")
        if proc_mount not in (None, "Default"):
            yield f"/proc Mount Type: {label} sets procMount={proc_mount!r}"


def _sysctls(pod_context: dict, safe: set[str]) -> Iterator[str]:
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in safe:
            yield f"Sysctls: the pod sets the unsafe sysctl {sysctl.get('name')!r}"


def _probe_and_lifecycle_hosts(containers) -> Iterator[str]:
    for label, container in containers:
        handlers = {
            probe: container.get(probe)
            for probe in ("livenessProbe", "readinessProbe", "startupProbe")
        }
        lifecycle = container.get("lifecycle") or {}
        handlers |= {f"lifecycle.{hook}": lifecycle.get(hook) for hook in ("postStart", "preStop")}
        for where, handler in handlers.items():
            for action in ("httpGet", "tcpSocket"):
                host = ((handler or {}).get(action) or {}).get("host")
                if host:
                    yield f"Host Probes / Lifecycle Hooks: {label} {where}.{action}.host={host!r}"


def _capabilities(containers) -> Iterator[str]:
    for label, container in containers:
        capabilities = _context(container).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            yield f'Capabilities: {label} does not drop ["ALL"]'
        added = [cap for cap in capabilities.get("add") or [] if cap != ALLOWED_ADDED_CAPABILITY]
        if added:
            yield f"Capabilities: {label} adds {', '.join(added)} (only NET_BIND_SERVICE may be)"


def _seccomp(pod_context: dict, containers) -> Iterator[str]:
    pod_profile = pod_context.get("seccompProfile")
    pod_profile_valid = pod_profile is not None and pod_profile.get("type") in ALLOWED_SECCOMP_TYPES
    if pod_profile is not None and not pod_profile_valid:
        yield f"Seccomp: the pod sets seccompProfile.type={pod_profile.get('type')!r}"
    for label, container in containers:
        profile = _context(container).get("seccompProfile")
        if profile is not None:
            if profile.get("type") not in ALLOWED_SECCOMP_TYPES:
                yield f"Seccomp: {label} sets seccompProfile.type={profile.get('type')!r}"
        elif not pod_profile_valid:
            yield f"Seccomp: neither the pod nor {label} sets a RuntimeDefault/Localhost profile"


def _privilege_escalation(containers) -> Iterator[str]:
    for label, container in containers:
        if _context(container).get("allowPrivilegeEscalation") is not False:
            yield f"Privilege Escalation: {label} does not set allowPrivilegeEscalation=false"


def _run_as_non_root(pod_context: dict, containers) -> Iterator[str]:
    pod_value = pod_context.get("runAsNonRoot")
    if pod_value is False:
        yield "Running as Non-root: the pod sets runAsNonRoot=false"
    for label, container in containers:
        value = _context(container).get("runAsNonRoot")
        if value is False:
            yield f"Running as Non-root: {label} sets runAsNonRoot=false"
        elif value is None and pod_value is not True:
            yield f"Running as Non-root: neither the pod nor {label} sets runAsNonRoot=true"


def _run_as_user(pod_context: dict, containers) -> Iterator[str]:
    if pod_context.get("runAsUser") == 0:
        yield "Running as Non-root user: the pod sets runAsUser=0"
    for label, container in containers:
        if _context(container).get("runAsUser") == 0:
            yield f"Running as Non-root user: {label} sets runAsUser=0"
