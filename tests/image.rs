//! The runtime image's promises (Dockerfile target `runtime`, on
//! gcr.io/distroless/cc-debian12:nonroot), checked without a Docker engine:
//! the stripped binary completes a day as uid 65532 in a sandbox whose root
//! holds only what the image has (its libraries, CA bundle and home) and is
//! read-only, with only the README's volume (/work/data) and /tmp writable and
//! no network but loopback; and it needs no library, nor symbol version, that
//! Debian 12 does not ship.
//!
//! The sandbox is bubblewrap (`bwrap`, Debian's `bubblewrap`, which
//! `.ci/run` installs); it needs user namespaces. The host is Debian 12 like
//! the image, so the image's libraries are bound in from the host.
//!
//! The binary is the one cargo built for this test (a debug build under
//! `cargo test`); `PIPELINE_IMAGE_BINARY=<path>` checks another, such as the
//! release build that the Dockerfile makes:
//! `PIPELINE_IMAGE_BINARY=$CARGO_TARGET_DIR/release/marketing-pipeline cargo test --test image`.
//! Either is cargo's build of the same sources, lockfile and features:
//! `the_dockerfile_builds_the_binary_this_test_checks_and_runs_it_as_nonroot`
//! checks that the Dockerfile's build stage is the README's
//! `cargo build --release --locked` of everything the binary compiles from,
//! on Debian 12, then stripped as here.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{DS, Run, rust_files};

/// The build stage's Debian release, the one cc-debian12 is made of.
const DEBIAN_RELEASE: &str = "bookworm";
const RUNTIME_BASE: &str = "gcr.io/distroless/cc-debian12:nonroot";
/// distroless's `nonroot` user and group.
const NONROOT: &str = "65532";
const INTERPRETER: &str = "/lib64/ld-linux-x86-64.so.2";
const LIBRARY_DIR: &str = "/lib/x86_64-linux-gnu";
/// The shared libraries cc-debian12 ships (amd64), by Debian package.
const IMAGE_LIBRARIES: &[&str] = &[
    // libc6
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libm.so.6",
    "libmvec.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libresolv.so.2",
    "libutil.so.1",
    "libanl.so.1",
    // libssl3
    "libssl.so.3",
    "libcrypto.so.3",
    // libgcc-s1, libstdc++6, libgomp1
    "libgcc_s.so.1",
    "libstdc++.so.6",
    "libgomp.so.1",
];
/// The newest symbol version of each family that Debian 12's libraries
/// define (glibc 2.36, GCC 12): a binary needing a newer one cannot start.
const NEWEST_SYMBOL_VERSIONS: &[(&str, &[u32])] = &[
    ("GLIBC_", &[2, 36]),
    ("GLIBCXX_", &[3, 4, 30]),
    ("CXXABI_", &[1, 3, 13]),
    ("GCC_", &[12, 0, 0]),
];
/// Where the README's `docker run` mounts its volume: the only writable
/// place besides /tmp.
const VOLUME: &str = "/work/data";
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const HOME: &str = "/home/nonroot";
/// The environment of a container of the image before the Dockerfile's own:
/// distroless sets PATH and SSL_CERT_FILE, Docker sets HOME from its passwd.
const BASE_ENV: &[(&str, &str)] = &[
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("SSL_CERT_FILE", CA_BUNDLE),
    ("HOME", HOME),
];

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The instructions of the Dockerfile's stage `name`, `FROM` first, as
/// (keyword, arguments), continuation lines joined.
fn stage(name: &str) -> Vec<(String, String)> {
    let dockerfile = repo_file("Dockerfile").replace("\\\n", " ");
    let mut current = None;
    let mut instructions = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, arguments) = line.split_once(' ').unwrap_or((line, ""));
        if keyword == "FROM" {
            current = arguments.split_once(" AS ").map(|(_, stage)| stage.trim());
        }
        if current == Some(name) {
            instructions.push((keyword.to_string(), arguments.trim().to_string()));
        }
    }
    assert!(
        !instructions.is_empty(),
        "the Dockerfile has no stage {name}"
    );
    instructions
}

/// The arguments of every `keyword` instruction of a stage.
fn all<'a>(stage: &'a [(String, String)], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, arguments)| arguments.as_str())
        .collect()
}

/// The arguments of a stage's one `keyword` instruction.
fn only<'a>(stage: &'a [(String, String)], keyword: &str) -> &'a str {
    let found = all(stage, keyword);
    assert_eq!(found.len(), 1, "{keyword} instructions: {found:?}");
    found[0]
}

/// What the runtime stage gives a container.
struct RuntimeImage {
    user: String,
    group: String,
    workdir: String,
    env: Vec<(String, String)>,
    entrypoint: String,
}

impl RuntimeImage {
    fn from_dockerfile() -> Self {
        let runtime = stage("runtime");
        let (user, group) = only(&runtime, "USER")
            .split_once(':')
            .expect("USER is user:group");
        let env = only(&runtime, "ENV")
            .split_whitespace()
            .map(|pair| {
                let (name, value) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("ENV {pair}: not NAME=value"));
                (name.to_string(), value.to_string())
            })
            .collect();
        let entrypoint: Vec<String> = serde_json::from_str(only(&runtime, "ENTRYPOINT")).unwrap();
        assert_eq!(entrypoint.len(), 1, "ENTRYPOINT is the binary alone");
        Self {
            user: user.to_string(),
            group: group.to_string(),
            workdir: only(&runtime, "WORKDIR").to_string(),
            env,
            entrypoint: entrypoint[0].clone(),
        }
    }
}

/// The top-level files and folders the binary compiles from: the manifest,
/// lockfile, build script, src/ and what src/'s non-test code embeds.
fn crate_inputs() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap();
    let mut inputs: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "build.rs", "src"]
        .map(String::from)
        .into();
    for file in rust_files(&root.join("src")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]\nmod ").next().unwrap();
        for embed in ["include_str!(\"", "include_bytes!(\""] {
            for (at, _) in code.match_indices(embed) {
                let rest = &code[at + embed.len()..];
                let relative = &rest[..rest.find('"').unwrap()];
                let embedded = file.parent().unwrap().join(relative).canonicalize();
                let embedded = embedded.unwrap_or_else(|e| panic!("{relative}: {e}"));
                let top = embedded.strip_prefix(&root).unwrap().components().next();
                inputs.insert(top.unwrap().as_os_str().to_string_lossy().into_owned());
            }
        }
    }
    inputs
}

fn version(text: &str) -> Vec<u32> {
    text.split('.')
        .map(|part| part.parse().unwrap_or_else(|_| panic!("version {text}")))
        .collect()
}

#[test]
fn the_dockerfile_builds_the_binary_this_test_checks_and_runs_it_as_nonroot() {
    let build = stage("build");
    let base = only(&build, "FROM");
    assert!(
        base.ends_with(&format!("-{DEBIAN_RELEASE} AS build")),
        "the build stage must be Debian 12 ({DEBIAN_RELEASE}), as the runtime image is \
         (its glibc and libstdc++): {base}"
    );
    let toolchain = base
        .strip_prefix("rust:")
        .unwrap()
        .split('-')
        .next()
        .unwrap();
    let manifest = repo_file("Cargo.toml");
    let supported = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        version(toolchain) >= version(supported),
        "Rust {toolchain} in the Dockerfile, the crate needs {supported}"
    );

    let cargo_build: Vec<&str> = all(&build, "RUN")
        .into_iter()
        .find(|run| run.contains("cargo build"))
        .expect("a RUN with cargo build")
        .split("&&")
        .map(str::trim)
        .collect();
    assert_eq!(
        cargo_build,
        [
            "cargo build --release --locked",
            "strip target/release/marketing-pipeline"
        ]
    );
    let readme = repo_file("README.md");
    assert!(readme.contains("`cargo build --release --locked`"));
    let copied: BTreeSet<&str> = all(&build, "COPY")
        .into_iter()
        .flat_map(|copy| {
            let paths: Vec<&str> = copy.split_whitespace().collect();
            paths[..paths.len() - 1].to_vec()
        })
        .collect();
    let missing: Vec<String> = crate_inputs()
        .into_iter()
        .filter(|input| !copied.contains(input.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the build stage does not COPY {missing:?}"
    );

    let runtime = stage("runtime");
    assert_eq!(only(&runtime, "FROM"), format!("{RUNTIME_BASE} AS runtime"));
    let image = RuntimeImage::from_dockerfile();
    assert_eq!(
        only(&runtime, "COPY"),
        format!(
            "--from=build /src/target/release/marketing-pipeline {}",
            image.entrypoint
        )
    );
    // Numeric, so that Kubernetes' runAsNonRoot can verify it without a passwd.
    assert_eq!(
        (image.user.as_str(), image.group.as_str()),
        (NONROOT, NONROOT)
    );
    assert!(image.env.contains(&("TMPDIR".into(), "/tmp".into())));
    // The sandbox's writable places are those that the documented command gives.
    let docker_run = format!("docker run --rm --read-only --tmpfs /tmp -v \"$PWD/data:{VOLUME}\"");
    assert!(readme.contains(&docker_run), "README: {docker_run}");
    assert!(
        repo_file("Dockerfile").contains(&docker_run),
        "Dockerfile: {docker_run}"
    );
}

/// The binary under test: PIPELINE_IMAGE_BINARY, else the one cargo built.
fn image_binary() -> PathBuf {
    let binary = std::env::var_os("PIPELINE_IMAGE_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_marketing-pipeline").into());
    assert!(binary.is_file(), "no binary at {}", binary.display());
    binary
}

fn readelf(option: &str, binary: &Path) -> String {
    let output = Command::new("readelf")
        .args([option, "--wide"])
        .arg(binary)
        .output()
        .expect("readelf (binutils, part of the C++ toolchain the build needs)");
    assert!(output.status.success(), "readelf {option}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_binary_needs_only_libraries_and_symbol_versions_the_image_ships() {
    let binary = image_binary();
    let needed: Vec<String> = readelf("--dynamic", &binary)
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .map(|line| line.split(['[', ']']).nth(1).unwrap().to_string())
        .collect();
    assert!(needed.contains(&"libc.so.6".to_string()), "{needed:?}");
    let foreign: Vec<&String> = needed
        .iter()
        .filter(|name| !IMAGE_LIBRARIES.contains(&name.as_str()))
        .collect();
    assert!(
        foreign.is_empty(),
        "{} needs {foreign:?}, which {RUNTIME_BASE} does not ship",
        binary.display()
    );
    assert!(
        readelf("--program-headers", &binary)
            .contains(&format!("[Requesting program interpreter: {INTERPRETER}]"))
    );

    let versions = readelf("--version-info", &binary);
    let needs = versions
        .split("Version needs section")
        .nth(1)
        .expect("a version needs section");
    let required: BTreeSet<&str> = needs
        .lines()
        .filter_map(|line| line.split("Name: ").nth(1)?.split_whitespace().next())
        .collect();
    assert!(required.iter().any(|name| name.starts_with("GLIBC_")));
    let too_new: Vec<&str> = required
        .into_iter()
        .filter(|name| {
            let (family, newest) = NEWEST_SYMBOL_VERSIONS
                .iter()
                .find(|(family, _)| name.starts_with(family))
                .unwrap_or_else(|| panic!("{name}: add Debian 12's newest of its family"));
            version(&name[family.len()..]).as_slice() > *newest
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "{} needs {too_new:?}, newer than Debian 12's",
        binary.display()
    );
}

/// A bubblewrap sandbox of a container of the runtime image, as the README's
/// `docker run --read-only --tmpfs /tmp -v "$PWD/data:/work/data"` starts it
/// (with `--network none`): the image's files in a read-only root, its user,
/// work dir and environment, and a fresh volume.
struct Sandbox {
    image: RuntimeImage,
    volume: tempfile::TempDir,
    /// Host files bound read-only into the root: (host path, path inside).
    files: Vec<(PathBuf, String)>,
}

impl Sandbox {
    fn new() -> Self {
        let libraries = IMAGE_LIBRARIES
            .iter()
            .map(|name| format!("{LIBRARY_DIR}/{name}"));
        let files = [INTERPRETER.to_string(), CA_BUNDLE.to_string()]
            .into_iter()
            .chain(libraries)
            .filter(|path| Path::new(path).exists())
            .map(|path| (PathBuf::from(&path), path))
            .collect();
        Self {
            image: RuntimeImage::from_dockerfile(),
            volume: tempfile::tempdir().unwrap(),
            files,
        }
    }

    fn with_file(mut self, host: &Path, inside: &str) -> Self {
        self.files.push((host.to_path_buf(), inside.to_string()));
        self
    }

    /// Runs `argv` inside, with the image's environment plus `env`.
    fn run(&self, env: &[(&str, &str)], argv: &[&str]) -> Run {
        let image = &self.image;
        let mut bwrap = Command::new("bwrap");
        bwrap.args(["--unshare-all", "--die-with-parent", "--clearenv"]);
        bwrap.args(["--uid", &image.user, "--gid", &image.group]);
        for (host, inside) in &self.files {
            bwrap.arg("--ro-bind").arg(host).arg(inside);
        }
        bwrap.args(["--dir", HOME, "--dev", "/dev", "--proc", "/proc"]);
        bwrap.args(["--tmpfs", "/tmp", "--dir", &image.workdir, "--bind"]);
        bwrap.arg(self.volume.path()).arg(VOLUME);
        bwrap.args(["--remount-ro", "/", "--chdir", &image.workdir]);
        let image_env = image.env.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        for (name, value) in BASE_ENV
            .iter()
            .copied()
            .chain(image_env)
            .chain(env.iter().copied())
        {
            bwrap.args(["--setenv", name, value]);
        }
        let output = bwrap.args(argv).output().unwrap_or_else(|e| {
            panic!(
                "bubblewrap (bwrap) cannot run: {e}; `bash .ci/run` installs Debian's bubblewrap"
            )
        });
        let run = common::finish(output);
        assert!(
            !run.stderr.starts_with("bwrap:"),
            "bubblewrap could not build the sandbox; to create its user, mount, PID and \
             network namespaces it needs (kernel.unprivileged_userns_clone=1 and \
             user.max_user_namespaces > 0; in a container, a seccomp and AppArmor profile \
             that allows them):\n{}",
            run.stderr
        );
        run
    }
}

#[test]
fn the_sandbox_is_read_only_but_for_the_volume_and_tmp_runs_as_nonroot_on_loopback_only() {
    // The image has no shell: the host's touch and cat, which need only
    // libc, look around inside.
    let sandbox = Sandbox::new()
        .with_file(Path::new("/usr/bin/touch"), "/usr/bin/touch")
        .with_file(Path::new("/usr/bin/cat"), "/usr/bin/cat");
    let touch = |dir: &str| {
        let file = Path::new(dir).join("written");
        sandbox.run(&[], &["/usr/bin/touch", file.to_str().unwrap()])
    };
    let workdir = sandbox.image.workdir.as_str();
    for dir in [
        "/",
        "/etc/ssl/certs",
        HOME,
        "/usr/bin",
        LIBRARY_DIR,
        workdir,
    ] {
        let run = touch(dir);
        assert!(
            run.code != 0 && run.stderr.contains("Read-only file system"),
            "touch in {dir}: {}",
            run.stderr
        );
    }
    for dir in [VOLUME, "/tmp"] {
        let run = touch(dir);
        assert_eq!(run.code, 0, "touch in {dir}: {}", run.stderr);
    }
    assert!(sandbox.volume.path().join("written").exists());

    let status = sandbox
        .run(&[], &["/usr/bin/cat", "/proc/self/status"])
        .stdout;
    let ids = |id: &str| format!("{id}\t{NONROOT}\t{NONROOT}\t{NONROOT}\t{NONROOT}\n");
    assert!(status.contains(&ids("Uid:")), "{status}");
    assert!(status.contains(&ids("Gid:")), "{status}");
    assert!(status.contains("CapEff:\t0000000000000000\n"), "{status}");

    let devices = sandbox.run(&[], &["/usr/bin/cat", "/proc/net/dev"]).stdout;
    let interfaces: Vec<&str> = devices
        .lines()
        .filter_map(|line| Some(line.split_once(':')?.0.trim()))
        .collect();
    assert_eq!(interfaces, ["lo"], "{devices}");
}

#[test]
fn the_stripped_binary_runs_a_day_in_the_images_sandbox() {
    let stripped_dir = tempfile::tempdir().unwrap();
    let stripped = stripped_dir.path().join("marketing-pipeline");
    std::fs::copy(image_binary(), &stripped).unwrap();
    let strip = Command::new("strip")
        .arg(&stripped)
        .status()
        .expect("strip (binutils, part of the C++ toolchain the build needs)");
    assert!(strip.success());
    let entrypoint = RuntimeImage::from_dockerfile().entrypoint;
    let sandbox = Sandbox::new().with_file(&stripped, &entrypoint);

    let run = sandbox.run(
        &[("SCALE_FACTOR", "0.05")],
        &[&entrypoint, "run", "--ds", DS],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.metrics["status"], "completed", "{}", run.stdout);
    // Where the image's settings put them: on the volume.
    for name in ["landing", "lake", "metadata.db", "warehouse.duckdb"] {
        let path = sandbox.volume.path().join(name);
        assert!(path.exists(), "{}", path.display());
    }

    let dataset = common::datasets()[0];
    let outside = sandbox.run(
        &[("PIPELINE_LANDING_URL", "file:///data/landing")],
        &[&entrypoint, "generate", dataset, "--ds", DS],
    );
    assert_ne!(outside.code, 0);
    let error = outside.metrics["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Read-only file system"),
        "{}",
        outside.stdout
    );
}
