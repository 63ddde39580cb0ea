# Sourced by the setup scripts of tests/interop and tests/browser (not run
# alone): `setup_begin NAME DIR` enters DIR, takes DIR's setup lock (setup
# is safe to run concurrently), and makes `$log`, the installers' captured
# output (removed on exit). Then `die MESSAGE` prints MESSAGE and that
# output and exits 1, `need COMMAND WHY` dies unless COMMAND is on PATH,
# and `checksum FILE...` prints one checksum of the files (the stamps that
# make setup idempotent).

setup_begin() {
    setup_name="$1"
    cd "$2"
    exec 9>"$2/.setup.lock"
    flock 9
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
}

die() {
    echo "$setup_name setup: $1" >&2
    if [ -s "$log" ]; then
        echo "----- installer output -----" >&2
        cat "$log" >&2
    fi
    exit 1
}

need() {
    command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH ($2)"
}

checksum() {
    sha256sum "$@" | sha256sum | cut -d' ' -f1
}
