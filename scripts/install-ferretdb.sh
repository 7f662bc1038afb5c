#!/usr/bin/env bash
# Installs the FerretDB v1 binary that the MongoDB store tests run against (DESIGN §6).
# Idempotent: a working binary of the right version is left alone. Progress goes to stderr; the
# binary's path is the only thing printed on stdout, so callers can do BIN=$(scripts/install-ferretdb.sh).
#
# Why not plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`: that builds, but the
# module zip lacks the generated build/version/version.txt, and the resulting binary panics at
# start-up ("Invalid build/version/version.txt file content"). So we fetch the same module from the
# Go module proxy, write that one file, and build cmd/ferretdb from the copy.
set -euo pipefail

VERSION="${FERRETDB_VERSION:-v1.24.2}"
MODULE="github.com/FerretDB/FerretDB"

if ! command -v go >/dev/null 2>&1; then
  echo "install-ferretdb: 'go' is not on PATH; install Go 1.24+ to build FerretDB $VERSION" >&2
  exit 1
fi

bin_dir="$(go env GOBIN)"
[ -n "$bin_dir" ] || bin_dir="$(go env GOPATH)/bin"
BIN="${FERRETDB_BIN:-$bin_dir/ferretdb}"

works() {
  local out
  # Captured rather than piped into `grep -q`: with pipefail, grep closing the pipe early fails the check.
  [ -x "$1" ] && out="$("$1" --version 2>/dev/null)" && grep -qx "version: $VERSION" <<<"$out"
}

if works "$BIN"; then
  echo "$BIN"
  exit 0
fi

echo "install-ferretdb: building FerretDB $VERSION into $BIN (takes a few minutes the first time)" >&2
mod_dir="$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [ -z "$mod_dir" ] || [ ! -d "$mod_dir" ]; then
  echo "install-ferretdb: could not download $MODULE@$VERSION from the Go module proxy" >&2
  exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/ferretdb-src.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -R "$mod_dir"/. "$work"/
chmod -R u+w "$work"
echo "$VERSION" >"$work/build/version/version.txt"

mkdir -p "$(dirname "$BIN")"
tmp_bin="$BIN.tmp.$$"
build() {
  (cd "$work" && go build -trimpath -buildvcs=false "$@" -o "$tmp_bin" ./cmd/ferretdb)
}
# Newer Go linkers refuse some //go:linkname pulls that older dependencies (modernc.org/libc) make;
# -checklinkname=0 is the documented escape hatch, so it is the one fallback we try.
if ! build 2>"$work/build.log"; then
  echo "install-ferretdb: plain build failed:" >&2
  cat "$work/build.log" >&2
  echo "install-ferretdb: retrying with -ldflags=-checklinkname=0" >&2
  if ! build -ldflags=-checklinkname=0 2>"$work/build.log"; then
    cat "$work/build.log" >&2
    rm -f "$tmp_bin"
    echo "install-ferretdb: building FerretDB $VERSION failed with $(go version)" >&2
    exit 1
  fi
fi
# Rename into place so a concurrent test run never executes a half-written binary.
mv -f "$tmp_bin" "$BIN"

if ! works "$BIN"; then
  echo "install-ferretdb: built $BIN but '$BIN --version' does not report $VERSION:" >&2
  "$BIN" --version >&2 || true
  exit 1
fi
echo "$BIN"
