#!/bin/sh
# Idle RSS per connection (pings running, participants and devices) of two gateway binaries,
# alternated in one run: RUNS rounds of BEFORE then AFTER at each client count given (the box may
# be shared: compare figures of the same run only).
# Usage: docs/bench/idle-ab.sh BEFORE AFTER RUNS COUNT...
set -eu
before=$1; after=$2; runs=$3; shift 3
for n in "$@"; do
	i=1
	while [ "$i" -le "$runs" ]; do
		for b in before after; do
			if [ "$b" = before ]; then bin=$before; else bin=$after; fi
			printf '== %s %s clients, round %s: ' "$b" "$n" "$i"
			"$bin" bench --idle --types participant,device --clients "$n" 2>/dev/null |
				grep -E '^(server rss|connected|idle steps)' | tr '\n' ' '
			echo
		done
		i=$((i + 1))
	done
done
