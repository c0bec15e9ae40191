#!/usr/bin/env bash
# Builds the container image: a fully static workmail-pat (glibc linked in with `-C target-feature=+crt-static`)
# in a `FROM scratch` image (see Containerfile), with Debian's podman, without any registry.
#
#   ./scripts/image.sh                      build workmail-pat:latest (and workmail-pat:VERSION)
#   ./scripts/image.sh --save FILE.tar      also write it as an OCI archive (`podman load -i FILE.tar`)
#   ./scripts/image.sh --tag NAME           another name instead of workmail-pat
#   ./scripts/image.sh --binary-only        only build the static binary and print its path
#
# podman (with runc, netavark, aardvark-dns and iptables) is installed with apt-get when missing. A CONTAINERS_CONF
# that is set is used as it is; otherwise this script writes target/podman/containers.conf, which selects runc
# (crun refuses some hybrid cgroup layouts) and explicit ulimits (some VMs do not permit podman's defaults), and
# uses it. To run the image by hand on such a machine: export CONTAINERS_CONF=target/podman/containers.conf.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

name=workmail-pat
save=""
binary_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --save) save="$2"; shift 2 ;;
        --tag) name="$2"; shift 2 ;;
        --binary-only) binary_only=1; shift ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# The static build: an explicit --target keeps the flag off build scripts and proc macros (which must stay
# dynamic), and puts the result in its own folder, so the ordinary debug and release builds are not disturbed.
triple="$(rustc -vV | sed -n 's/^host: //p')"
case "$triple" in
    *-linux-gnu) ;;
    *) echo "image.sh: the static build needs a *-linux-gnu host, not $triple" >&2; exit 1 ;;
esac
rustflags_var="CARGO_TARGET_$(echo "$triple" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
export "$rustflags_var=-C target-feature=+crt-static"
cargo build --release --locked --target "$triple" --bin workmail-pat >&2
binary="$TARGET_DIR/$triple/release/workmail-pat"
# Static means: no program interpreter and no shared library at all.
if readelf -l "$binary" | grep -q INTERP || readelf -d "$binary" | grep -q NEEDED; then
    echo "image.sh: $binary is not fully static:" >&2
    readelf -d "$binary" | grep NEEDED >&2 || true
    exit 1
fi
if [ "$binary_only" = 1 ]; then
    echo "$binary"
    exit 0
fi

if ! command -v podman >/dev/null || ! command -v iptables >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        podman runc netavark aardvark-dns iptables >/dev/null
fi
if [ -z "${CONTAINERS_CONF:-}" ]; then
    mkdir -p "$TARGET_DIR/podman"
    export CONTAINERS_CONF="$TARGET_DIR/podman/containers.conf"
    # Modest limits that any machine permits (here even nproc at this shell's own hard limit was refused); the
    # server needs a few dozen threads and one descriptor per connection (--max-connections 1024 by default).
    nofile="$(ulimit -Hn)"
    if [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ]; then nofile=65536; fi
    cat >"$CONTAINERS_CONF" <<CONF
# Written by scripts/image.sh.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
fi

# The build context holds exactly what the image gets.
context="$TARGET_DIR/image-context"
rm -rf "$context"
mkdir -p "$context/data"
cp Containerfile "$context/Containerfile"
# Symbols are no use inside the image; the debug info stays in the build folder.
strip -o "$context/workmail-pat" "$binary"

version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
# The docker format: the OCI image format has no HEALTHCHECK.
podman build --format docker --pull=never --label "org.opencontainers.image.version=$version" \
    -t "$name:$version" -t "$name:latest" -f "$context/Containerfile" "$context" >&2
podman image inspect --format '{{.Size}}' "$name:latest" |
    awk -v n="$name:latest" '{ printf "image %s: %.1f MiB\n", n, $1 / 1048576 }'
if [ -n "$save" ]; then
    rm -f "$save"
    podman save --format oci-archive -o "$save" "$name:latest"
    echo "saved $save ($(du -h "$save" | cut -f1)); load it with: podman load -i $save"
fi
