#!/usr/bin/env python3
"""A task program for `harness worker --exec`, in Python (standard library only).

payload (stdin): {"max_load": 2.0, "hosts": [{"name": "db-1", "load": 3.5}, ...]}
stdout:          one alert line per host over max_load

Each line leaves out org_id (the wrapper sets the task's) and dedupe_key (the
wrapper derives it from the task id and the line's index: the same on every
attempt, since the output depends on the payload alone). Anything on stderr
lands in the worker's log with the task id and attempt.
"""
import json
import os
import sys

payload = json.load(sys.stdin)
max_load = float(payload.get("max_load", 2.0))
hosts = payload.get("hosts", [])
print(
    f"task {os.environ['HARNESS_TASK_ID']} attempt {os.environ['HARNESS_ATTEMPT']}: "
    f"{len(hosts)} hosts, max load {max_load}",
    file=sys.stderr,
)

for host in hosts:
    load = float(host["load"])
    if load <= max_load:
        continue
    alert = {
        "source": "load",
        "severity": "critical" if load > 2 * max_load else "high",
        "title": f"load {load} on {host['name']} is over {max_load}",
        # From the payload, not the clock: every attempt prints the same line.
        "occurred_at": payload.get("observed_at", "2024-01-01T00:00:00Z"),
        "attributes": {"host": host["name"], "load": load, "max_load": max_load},
    }
    print(json.dumps(alert))
