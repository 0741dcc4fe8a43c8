# Installers shared by .ci/run and benches/run. Source it with $cache set
# to the cache directory outside the clone.

# s3s-fs, a real S3-compatible server on 127.0.0.1 (S3S_FS_BIN).
install_s3s_fs() {
    local version=0.14.1
    export S3S_FS_BIN="$cache/tools/bin/s3s-fs"
    if [ "$("$S3S_FS_BIN" --version 2>/dev/null)" != "s3s-fs $version" ]; then
        echo "== installing s3s-fs $version (S3 test server)"
        cargo install s3s-fs --version "$version" --features binary --locked \
            --root "$cache/tools" --target-dir "$cache/tools-target" --force
    fi
}

# A venv at $1 with the requirements file $2 (and constraints $3), reinstalled
# only when they change.
install_venv() {
    local venv="$1" stamp
    stamp="$(cat "${@:2}" | md5sum | cut -d' ' -f1)"
    if [ "$(cat "$venv/installed-stamp" 2>/dev/null)" != "$stamp" ]; then
        echo "== installing $2 into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$2" ${3:+-c "$3"}
        echo "$stamp" >"$venv/installed-stamp"
    fi
}
