#!/bin/sh
# Idle RSS per connection (pings running) at each client count given, alternating the bare
# gorilla baseline, teragate with its built-in Wasm plugins and teragate with the native filters,
# in one run (the box may be shared: compare figures of the same run only).
# Usage: docs/bench/idle-rss.sh BINARY COUNT...
set -eu
bin=$1; shift
for n in "$@"; do
	for t in bare wasm native; do
		case $t in
		bare) args="--target bare" ;;
		wasm) args="" ;;
		native) args="--native" ;;
		esac
		printf '== %s %s clients: ' "$t" "$n"
		"$bin" bench --idle --clients "$n" $args 2>/dev/null | grep -E '^(server rss|connected|idle steps)' | tr '\n' ' '
		echo
	done
done
