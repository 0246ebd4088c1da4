#!/bin/sh
# A task program for `harness worker --exec` that fails its first attempt on
# purpose: the wrapper tells it which attempt it is (HARNESS_ATTEMPT). A
# non-zero exit fails the attempt as retryable, so the task is queued again
# with a backoff, and attempt 2 prints its alert.
set -eu
cat >/dev/null # the payload: not needed here

if [ "$HARNESS_ATTEMPT" -eq 1 ]; then
  echo "attempt 1: failing on purpose, the next attempt will work" >&2
  exit 75
fi
printf '{"source":"flaky","severity":"info","title":"worked on attempt %s","occurred_at":"2024-01-01T00:00:00Z"}\n' "$HARNESS_ATTEMPT"
