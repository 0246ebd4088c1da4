#!/bin/sh
# A task program for `harness worker --exec`: one alert per filesystem at or
# over a threshold of use.
#
#   payload (stdin): {"threshold": 90}        (percent; 90 when left out)
#   stdout:          one alert line per full filesystem (org_id is the wrapper's)
#
# The dedupe key names the task and the mount point, so a retried attempt
# (or one that sees the filesystems in another order) stores each alert once.
set -eu

payload=$(cat)
threshold=$(printf '%s' "$payload" | sed -n 's/.*"threshold"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p')
threshold=${threshold:-90}
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# -P: one line per filesystem, POSIX columns; skip the header.
df -P | tail -n +2 | while read -r fs blocks used avail capacity mount; do
  pct=${capacity%\%}
  case $pct in '' | *[!0-9]*) continue ;; esac
  [ "$pct" -ge "$threshold" ] || continue
  severity=medium
  [ "$pct" -ge 95 ] && severity=high
  # Mount points and device names may hold characters JSON must escape.
  m=$(printf '%s' "$mount" | sed 's/\\/\\\\/g; s/"/\\"/g')
  f=$(printf '%s' "$fs" | sed 's/\\/\\\\/g; s/"/\\"/g')
  printf '{"dedupe_key":"df:%s:%s","source":"df","severity":"%s","title":"%s is %s%% full","occurred_at":"%s","attributes":{"filesystem":"%s","mount":"%s","used_percent":%s,"available_kb":%s}}\n' \
    "$HARNESS_TASK_ID" "$m" "$severity" "$m" "$pct" "$now" "$f" "$m" "$pct" "$avail"
done
