#!/bin/sh
# The default worker's job done by a task program, for `harness worker --exec`
# and `harness verify --exec`: the payload {"alerts": N, "work_ms": MS} gives
# N alert lines, after at least MS milliseconds of "work".
#
# The lines carry no dedupe_key: the wrapper derives "<task id>:<index>" for
# each, the very keys the default worker uses, so `harness verify` checks the
# rows of these tasks exactly as it checks its own. The output depends on the
# payload alone, so every attempt prints the same lines.
set -eu

payload=$(cat)
field() {
  printf '%s' "$payload" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p"
}
n=$(field alerts)
ms=$(field work_ms)
if [ -n "$ms" ] && [ "$ms" -gt 0 ]; then sleep "$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 1000 }')"; fi

awk -v n="${n:-0}" -v task="$HARNESS_TASK_ID" 'BEGIN {
  split("info low medium high critical", severity, " ")
  for (i = 0; i < n; i++)
    printf "{\"source\":\"harness.exec\",\"severity\":\"%s\",\"title\":\"Alert %d of task %s\",\"occurred_at\":\"2024-01-01T%02d:%02d:%02dZ\",\"attributes\":{\"index\":%d}}\n",
      severity[i % 5 + 1], i, task, int(i / 3600) % 24, int(i / 60) % 60, i % 60, i
}'
