import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { WORKER_LOG } from "../../src/worker/logs";
import { waitFor } from "../support/wait";
import {
  alive,
  alivePids,
  descendants,
  killAll,
  type Proc,
  program,
  removeTempDirs,
} from "../worker/exec/helpers";
import {
  attempts,
  execWorker,
  finished,
  LINE,
  objectsOf,
  publishedAttempts,
  rowKeys,
  task,
} from "./exec-platform";
import { TestPlatform } from "./platform";

/**
 * `harness worker --exec`: real task programs under the platform's
 * invariants, every role a real process. Each program misbehaves on its
 * first attempt only (it knows which one it is: HARNESS_ATTEMPT), so the
 * retry shows the task still ends with exactly its rows, and nothing of the
 * failed or fenced attempt was published.
 */

let p: TestPlatform;
const leftovers: Proc[] = [];
beforeAll(async () => {
  p = await TestPlatform.start({ leaseMs: 1500, visibilityMs: 1000 });
  await p.startDispatcher();
  p.startSink(["--concurrency", "2"]);
});
afterAll(async () => {
  killAll(leftovers);
  await p.stop();
  removeTempDirs();
});

describe("invariants: worker --exec", () => {
  test("a program killed mid-run: its attempt fails (retryable), the retry succeeds, one row", async () => {
    const org = "exec-killed";
    const cmd = program(
      "killed-once",
      `if [ "$HARNESS_ATTEMPT" -eq 1 ]; then echo '${LINE("k")}'; exec sleep 1000; fi\necho '${LINE("k")}'`,
    );
    const [id = ""] = await p.createPayloadTasks(org, {});
    const w = execWorker(p, cmd);
    const sleeper = await waitFor(
      () => descendants(w.proc.pid).find((d) => d.comm === "sleep" && d.state !== "Z"),
      { what: "the program sleeping" },
    );
    process.kill(sleeper.pid, "SIGKILL");
    await finished(p, org, [id], w);
    expect(await task(p, id)).toEqual({ status: "succeeded", attempt: 2 });
    const [first] = await attempts(p, id);
    expect(first).toMatchObject({ attempt: 1, outcome: "failed" });
    expect(first?.reason).toContain("SIGKILL");
    expect(await publishedAttempts(p, id)).toEqual([2]);
    expect(await rowKeys(p, org)).toEqual(["k"]);
  }, 60_000);

  test("a worker killed while its program runs: the program and all it started die with it", async () => {
    const org = "exec-worker-killed";
    const cmd = program(
      "slow-once",
      `if [ "$HARNESS_ATTEMPT" -eq 1 ]; then sleep 1000 & setsid sleep 1000 & exec sleep 1000; fi\necho '${LINE("w")}'`,
    );
    const [id = ""] = await p.createPayloadTasks(org, {});
    const doomed = execWorker(p, cmd);
    const family = await waitFor(
      () => {
        const below = descendants(doomed.proc.pid);
        leftovers.push(...below);
        return below.filter((d) => d.comm === "sleep" && alive(d)).length === 3 ? below : undefined;
      },
      { what: "the program and its two children" },
    );
    doomed.proc.kill("SIGKILL");
    await doomed.exited;
    await waitFor(() => alivePids(family).length === 0, {
      what: "every process of the program gone",
      timeoutMs: 5_000,
    });
    await finished(p, org, [id], execWorker(p, cmd));
    expect(await task(p, id)).toEqual({ status: "succeeded", attempt: 2 });
    expect(await rowKeys(p, org)).toEqual(["w"]);
  }, 60_000);

  test("a program past --task-timeout is stopped; its attempt fails (retryable); the retry succeeds", async () => {
    const org = "exec-timeout";
    const cmd = program(
      "hangs-once",
      `if [ "$HARNESS_ATTEMPT" -eq 1 ]; then exec sleep 1000; fi\necho '${LINE("t")}'`,
    );
    const [id = ""] = await p.createPayloadTasks(org, {});
    await finished(p, org, [id], execWorker(p, cmd, ["--task-timeout", "1s"]));
    expect(await task(p, id)).toEqual({ status: "succeeded", attempt: 2 });
    const [first] = await attempts(p, id);
    expect(first?.outcome).toBe("failed");
    expect(first?.reason).toContain("--task-timeout (1000 ms)");
    expect(await rowKeys(p, org)).toEqual(["t"]);
  }, 60_000);

  test("a program that keeps printing after its worker was fenced out: none of it is published", async () => {
    const org = "exec-fenced";
    const cmd = program(
      "stubborn-once",
      `if [ "$HARNESS_ATTEMPT" -eq 1 ]; then
  trap '' TERM PIPE
  i=0
  while :; do
    i=$((i+1)); printf '${LINE("stale-%s")}\\n' "$i"
    [ $((i % 100)) -ne 0 ] || sleep 0.01
  done
fi
echo '${LINE("fresh")}'`,
    );
    const [id = ""] = await p.createPayloadTasks(org, {});
    const paused = execWorker(p, cmd);
    // Its output is being streamed into the store: a temporary object exists.
    await waitFor(() => objectsOf(p, org, id, 1).length > 0, { what: "attempt 1 streaming" });
    const family = descendants(paused.proc.pid);
    leftovers.push(...family);
    paused.proc.kill("SIGSTOP");
    try {
      // Its lease expires; another worker takes the task over and completes it.
      await finished(p, org, [id], execWorker(p, cmd));
      expect(await task(p, id)).toEqual({ status: "succeeded", attempt: 2 });
    } finally {
      paused.proc.kill("SIGCONT");
    }
    await paused.waitForLog((l) => l.msg === WORKER_LOG.fencedOut, "fenced out", 15_000);
    await waitFor(() => alivePids(family).length === 0, {
      what: "the stubborn program killed after the grace period",
      timeoutMs: 10_000,
    });
    await p.waitQuiet(org, [id]);
    expect(await publishedAttempts(p, id)).toEqual([2]);
    expect(await rowKeys(p, org)).toEqual(["fresh"]);
    expect(objectsOf(p, org, id, 1)).toEqual([]);
    expect(await paused.stop("SIGTERM")).toBe(0);
  }, 90_000);

  test("one bad line: the attempt fails, not retryable, naming the line; the task ends failed with zero rows", async () => {
    const org = "exec-bad-line";
    const cmd = program(
      "bad-second-line",
      `echo '${LINE("b1")}'\necho '{"source":"exec","severity":"low"}'\necho '${LINE("b3")}'`,
    );
    const [id = ""] = await p.createPayloadTasks(org, {});
    await finished(p, org, [id], execWorker(p, cmd));
    expect(await task(p, id)).toEqual({ status: "failed", attempt: 1 });
    const [only, ...more] = await attempts(p, id);
    expect(more).toEqual([]);
    expect(only?.outcome).toBe("failed");
    expect(only?.reason).toStartWith("line 2 breaks the AlertLine contract");
    expect(await publishedAttempts(p, id)).toEqual([]);
    expect(await rowKeys(p, org)).toEqual([]);
    expect(objectsOf(p, org, id, 1)).toEqual([]);
  }, 60_000);
});
