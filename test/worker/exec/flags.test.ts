import { describe, expect, test } from "bun:test";
import {
  durationFlag,
  type ExecFlagValues,
  execSettingsFrom,
  repeated,
  sizeFlag,
} from "../../../src/commands/_exec-flags";
import { runHarness } from "../../support/processes";

const none: ExecFlagValues = {
  exec: undefined,
  positionals: [],
  rawArgs: [],
  taskTimeout: undefined,
  graceMs: 10_000,
  execMemory: undefined,
  execCpuSeconds: undefined,
  execUser: undefined,
  execNoNetwork: false,
};

describe("worker --exec flags", () => {
  test("--exec CMD ARGS…, repeated --exec-env, durations and sizes with units", () => {
    const raw = [
      "--exec",
      "python3",
      "--exec-env",
      "A",
      "--exec-env=B",
      "--",
      "x.py",
      "--exec-env",
      "C",
    ];
    const s = execSettingsFrom(
      {
        ...none,
        exec: "python3",
        positionals: ["x.py", "--exec-env", "C"],
        rawArgs: raw,
        taskTimeout: "90s",
        execMemory: "512M",
        execCpuSeconds: "30",
      },
      {},
    );
    expect(s).toMatchObject({
      command: ["python3", "x.py", "--exec-env", "C"],
      passEnv: ["A", "B"],
      taskTimeoutMs: 90_000,
      memoryBytes: 512 * 1024 * 1024,
      cpuSeconds: 30,
      graceMs: 10_000,
    });
  });

  test("TASK_COMMAND when --exec is not given; neither: the default worker", () => {
    expect(execSettingsFrom(none, { TASK_COMMAND: " examples/flaky.sh  a b " })?.command).toEqual([
      "examples/flaky.sh",
      "a",
      "b",
    ]);
    expect(execSettingsFrom(none, {})).toBeUndefined();
  });

  test("refusals, one line each", () => {
    expect(() => execSettingsFrom({ ...none, execNoNetwork: true }, {})).toThrow("need --exec CMD");
    expect(() => execSettingsFrom({ ...none, positionals: ["x"] }, {})).toThrow(
      "unexpected argument",
    );
    expect(() => durationFlag("task-timeout", "30")).toThrow("like 1500ms, 30s, 10m or 2h");
    expect(durationFlag("task-timeout", "1500ms")).toBe(1500);
    expect(durationFlag("task-timeout", "2h")).toBe(7_200_000);
    expect(() => sizeFlag("exec-memory", "lots")).toThrow("like 512M or 2G");
    expect(() => sizeFlag("exec-memory", "1M")).toThrow("at least 16M");
    expect(sizeFlag("exec-memory", "2GiB")).toBe(2 * 1024 ** 3);
    expect(() => repeated(["--exec-env"], "exec-env")).toThrow("--exec-env needs a NAME");
  });
});

describe("harness worker --exec refusals", () => {
  const env = {
    DATABASE_URL: "postgres://postgres@127.0.0.1:1/none",
    INTERNAL_AUTH_TOKEN: "refusal-test-token-0123",
    OBJECT_STORE_URL: "file:///tmp/harness-exec-refusals-unused",
  };
  test("a setting it cannot honour stops it at start: exit 2, one line, before any connection", async () => {
    for (const [args, line] of [
      [["--exec", "/no/such/program"], "/no/such/program is not an executable file"],
      [
        ["--exec", "sh", "--exec-env", "INTERNAL_AUTH_TOKEN"],
        "--exec-env INTERNAL_AUTH_TOKEN is worker configuration",
      ],
      [
        ["--exec", "sh", "--exec-user", "no-such-user-here"],
        "--exec-user no-such-user-here: no such user",
      ],
      [["--exec", "sh", "--task-timeout", "5"], "--task-timeout must be a duration"],
    ] as const) {
      const r = await runHarness(["worker", ...args], env);
      expect(r.code, args.join(" ")).toBe(2);
      const lines = r.stderr.trim().split("\n");
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toContain(line);
    }
  }, 60_000);
});
