#!/usr/bin/env bash
# Release archives and the krew manifest for kubectl remote-cluster. See docs/releasing.md.
#
#   scripts/release.sh                         build for this machine (or $TARGET), package it into
#                                              dist/, and write its entry in the krew manifest
#   scripts/release.sh package BIN_DIR OS ARCH OUT_DIR
#                                              archive prebuilt executables from BIN_DIR
#   scripts/release.sh manifest ARCHIVE...     write the version, URIs and the sha256 of each
#                                              archive into the krew manifest
#
# Environment:
#   TARGET        Rust target triple to build (default: the host); OS and arch follow from it
#   CARGO_BUILD   build command (default "cargo build"; e.g. "cargo zigbuild", "cross build")
#   VERSION       version without the leading v (default: the crate version from Cargo.toml)
#   MANIFEST      krew manifest to update (default: krew/remote-cluster.yaml)
#   RELEASE_URL   where the archives are published, without the tag
#                 (default: $HOMEPAGE/releases/download, HOMEPAGE read from the manifest)
#   DIST          output directory (default: dist)
#   SOURCE_DATE_EPOCH  timestamp stored in the archives (default: the last commit's)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PLUGIN=kubectl-remote_cluster
HELPER=kubectl_complete-remote_cluster
MANIFEST="${MANIFEST:-$ROOT/krew/remote-cluster.yaml}"
DIST="${DIST:-$ROOT/dist}"

die() {
    echo "error: $*" >&2
    exit 1
}

crate_version() {
    if [[ -n "${VERSION:-}" ]]; then
        echo "${VERSION#v}"
        return
    fi
    # The [package] version of the root crate (the workspace has no shared version).
    awk '
        /^\[/ { in_package = ($0 == "[package]") }
        in_package && /^version *=/ { gsub(/.*= *"|".*/, ""); print; exit }
    ' "$ROOT/Cargo.toml"
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi | tr 'A-F' 'a-f'
}

# krew's os/arch for a Rust target triple, or for this machine without one.
platform_of() {
    local triple="${1:-}" os arch
    if [[ -n "$triple" ]]; then
        case "$triple" in
            *-linux-*) os=linux ;;
            *-apple-darwin) os=darwin ;;
            *-windows-*) os=windows ;;
            *) die "no krew os for target $triple" ;;
        esac
        arch="${triple%%-*}"
    else
        case "$(uname -s)" in
            Linux) os=linux ;;
            Darwin) os=darwin ;;
            MINGW* | MSYS* | CYGWIN*) os=windows ;;
            *) die "unsupported OS $(uname -s)" ;;
        esac
        arch="$(uname -m)"
    fi
    case "$arch" in
        x86_64 | amd64) arch=amd64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) die "unsupported architecture $arch" ;;
    esac
    echo "$os $arch"
}

archive_name() { # VERSION OS ARCH
    local ext=tar.gz
    [[ "$2" == windows ]] && ext=zip
    echo "${PLUGIN}_${1}_${2}_${3}.${ext}"
}

# package BIN_DIR OS ARCH OUT_DIR: both executables, LICENSE and README.md in one archive, plus
# ARCHIVE.sha256 beside it. Prints the archive's path.
package() {
    local bin_dir="$1" os="$2" arch="$3" out="$4"
    local version exe="" name stage
    version="$(crate_version)"
    [[ "$os" == windows ]] && exe=.exe
    name="$(archive_name "$version" "$os" "$arch")"
    for file in "$bin_dir/$PLUGIN$exe" "$bin_dir/$HELPER$exe" "$ROOT/LICENSE" "$ROOT/README.md"; do
        [[ -f "$file" ]] || die "missing $file"
    done
    mkdir -p "$out"
    out="$(cd "$out" && pwd)"
    stage="$(mktemp -d)"
    cp "$bin_dir/$PLUGIN$exe" "$bin_dir/$HELPER$exe" "$ROOT/LICENSE" "$ROOT/README.md" "$stage/"
    chmod 0755 "$stage/$PLUGIN$exe" "$stage/$HELPER$exe"
    chmod 0644 "$stage/LICENSE" "$stage/README.md"
    local epoch="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || echo 0)}"
    rm -f "$out/$name"
    if [[ "$os" == windows ]]; then
        command -v zip >/dev/null || die "zip is needed for the Windows archive"
        (cd "$stage" && TZ=UTC touch -d "@$epoch" ./* 2>/dev/null; zip -qX "$out/$name" ./*)
    elif tar --version 2>/dev/null | grep -q 'GNU tar'; then
        # Reproducible: fixed order, owner and time.
        tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
            -cf - "$PLUGIN" "$HELPER" LICENSE README.md | gzip -n >"$out/$name"
    else
        tar -C "$stage" -cf - "$PLUGIN" "$HELPER" LICENSE README.md | gzip -n >"$out/$name"
    fi
    rm -rf "$stage"
    echo "$(sha256_of "$out/$name")  $name" >"$out/$name.sha256"
    echo "$out/$name"
}

# manifest ARCHIVE...: set the version and every URI to this version, and the sha256 of the
# platforms whose archives are given. Other platforms keep their hash (see docs/releasing.md).
manifest() {
    [[ -f "$MANIFEST" ]] || die "no manifest at $MANIFEST"
    local version homepage base
    version="$(crate_version)"
    homepage="$(awk '$1 == "homepage:" { print $2; exit }' "$MANIFEST")"
    base="${RELEASE_URL:-$homepage/releases/download}"
    local hashes=()
    for archive in "$@"; do
        [[ -f "$archive" ]] || die "no archive $archive"
        local file platform
        file="$(basename "$archive")"
        platform="${file#"${PLUGIN}_${version}_"}"
        [[ "$platform" != "$file" ]] || die "$file is not an archive of version $version"
        platform="${platform%.tar.gz}"
        platform="${platform%.zip}"
        hashes+=("$platform=$(sha256_of "$archive")")
    done
    local updated
    updated="$(mktemp)"
    awk -v version="$version" -v base="$base" -v plugin="$PLUGIN" -v hashes="${hashes[*]:-}" '
        BEGIN {
            n = split(hashes, pairs, " ")
            for (i = 1; i <= n; i++) { split(pairs[i], kv, "="); sha[kv[1]] = kv[2] }
        }
        /^  version:/ { print "  version: v" version; next }
        /^    uri:/ {
            file = $2; sub(/.*\//, "", file)
            # kubectl-remote_cluster_<old version>_<os>_<arch>.<ext>
            ext = (file ~ /\.zip$/) ? "zip" : "tar.gz"
            platform = file; sub(/\.(tar\.gz|zip)$/, "", platform)
            k = split(platform, parts, "_")
            platform = parts[k - 1] "_" parts[k]
            print "    uri: " base "/v" version "/" plugin "_" version "_" platform "." ext
            current = platform
            next
        }
        /^    sha256:/ && (current in sha) { print "    sha256: " sha[current]; next }
        { print }
    ' "$MANIFEST" >"$updated"
    # Keep the file (and its permissions) in place.
    cat "$updated" >"$MANIFEST"
    rm -f "$updated"
    for pair in ${hashes[@]+"${hashes[@]}"}; do
        echo "manifest: ${pair%%=*} sha256 ${pair#*=}" >&2
    done
}

build_here() {
    local version triple="${TARGET:-}" os arch bin_dir
    version="$(crate_version)"
    read -r os arch <<<"$(platform_of "$triple")"
    local tag
    tag="$(git -C "$ROOT" describe --tags --exact-match 2>/dev/null || true)"
    if [[ "$tag" != "v$version" ]]; then
        echo "warning: HEAD is not tagged v$version (krew wants the version to equal the tag)" >&2
    fi
    local build=(${CARGO_BUILD:-cargo build})
    local target_args=()
    bin_dir="${CARGO_TARGET_DIR:-$ROOT/target}/release"
    if [[ -n "$triple" ]]; then
        target_args=(--target "$triple")
        bin_dir="${CARGO_TARGET_DIR:-$ROOT/target}/$triple/release"
    fi
    (cd "$ROOT" && "${build[@]}" --release --locked -p kubectl-remote-cluster --bins ${target_args[@]+"${target_args[@]}"})
    local archive
    archive="$(package "$bin_dir" "$os" "$arch" "$DIST")"
    manifest "$archive"
    echo "$archive"
}

case "${1:-}" in
    "") build_here ;;
    package)
        [[ $# -eq 5 ]] || die "usage: $0 package BIN_DIR OS ARCH OUT_DIR"
        package "$2" "$3" "$4" "$5"
        ;;
    manifest)
        shift
        manifest "$@"
        ;;
    -h | --help) sed -n '2,20s/^# \{0,1\}//p' "$0" ;;
    *) die "unknown command $1 (see $0 --help)" ;;
esac
