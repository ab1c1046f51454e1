#!/usr/bin/env bash
# Regenerates the Go code (*.pb.go, committed) for every .proto file under proto/.
#
# Usage: bash proto/generate.sh      (from any directory; `make proto` calls it)
#
# - protoc comes from the system (Debian: protobuf-compiler + libprotobuf-dev,
#   which also provides google/protobuf/*.proto under /usr/include).
# - protoc-gen-go is built from the google.golang.org/protobuf version pinned in
#   go.mod, so generated code always matches the runtime library.
# - Import paths in .proto files are relative to proto/, e.g.
#   import "opentera/LogEvent.proto";
# - Output goes next to each .proto (paths=source_relative).
set -euo pipefail

# Run from the repository root regardless of the caller's cwd.
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/.." && pwd)"
cd "$repo_root"

# Directory holding google/protobuf/*.proto (well-known types).
protoc_include="${PROTOC_INCLUDE:-/usr/include}"

die() {
	echo "proto/generate.sh: error: $*" >&2
	exit 1
}

# 1. protoc (and the well-known .proto files) must be present.
if ! command -v protoc >/dev/null 2>&1 || [ ! -f "$protoc_include/google/protobuf/any.proto" ]; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "proto/generate.sh: installing protoc (protobuf-compiler libprotobuf-dev)" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y protobuf-compiler libprotobuf-dev ||
			{ apt-get update && apt-get install -y protobuf-compiler libprotobuf-dev; }
	else
		die "protoc and $protoc_include/google/protobuf/any.proto are required. Install them with: sudo apt-get install -y protobuf-compiler libprotobuf-dev (or set PROTOC_INCLUDE to the directory containing google/protobuf/any.proto)"
	fi
fi
command -v protoc >/dev/null 2>&1 || die "protoc still not found in PATH after installation"
[ -f "$protoc_include/google/protobuf/any.proto" ] ||
	die "$protoc_include/google/protobuf/any.proto not found (install libprotobuf-dev or set PROTOC_INCLUDE)"
command -v go >/dev/null 2>&1 || die "the go toolchain is required to build protoc-gen-go"

# 2. Collect the .proto files (sorted, so the invocation is deterministic).
mapfile -t proto_files < <(find proto -type f -name '*.proto' | LC_ALL=C sort)
if [ "${#proto_files[@]}" -eq 0 ]; then
	echo "proto/generate.sh: no .proto files under proto/, nothing to do"
	exit 0
fi

# 3. Build protoc-gen-go at the version pinned in go.mod.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go

# 4. Generate.
echo "proto/generate.sh: $(protoc --version), protoc-gen-go $("$tmp/protoc-gen-go" --version 2>&1 | awk '{print $NF}'), ${#proto_files[@]} file(s)"
protoc \
	-I proto \
	-I "$protoc_include" \
	--plugin=protoc-gen-go="$tmp/protoc-gen-go" \
	--go_out=proto \
	--go_opt=paths=source_relative \
	"${proto_files[@]}"
