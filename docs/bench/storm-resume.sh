#!/bin/sh
# Connect storm with and without resume, for one or more teragate binaries, alternating them in
# one run (the box may be shared: compare figures of the same run only).
# Usage: docs/bench/storm-resume.sh CLIENTS [redis://HOST:PORT/DB] -- BINARY...
# Each binary's bench spawns its own gateway (memory mode, or Redis mode on the given URL, which
# is flushed before each run) and runs --storm, then --storm --storm-resume.
set -eu
clients=$1; shift
redis=""
if [ "$1" != "--" ]; then redis=$1; shift; fi
shift # --
for bin in "$@"; do
	for mode in "" "--storm-resume"; do
		extra=""
		if [ -n "$redis" ]; then
			redis-cli -u "$redis" flushall >/dev/null
			extra="--server-redis $redis"
		fi
		echo "== $bin --clients $clients --storm $mode ${redis:+(Redis mode)}"
		# shellcheck disable=SC2086
		"$bin" bench --clients "$clients" --storm $mode $extra 2>/dev/null |
			grep -E '^(back|storm cpu|reconnects|refused|presence|storm events|storm resume|server rss) '
	done
done
