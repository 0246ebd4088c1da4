import { describe, expect, test } from "bun:test";
import {
  durationFlag,
  type ExecFlagValues,
  execSettingsFrom,
  repeated,
  sizeFlag,
} from "../../../src/commands/_exec-flags";

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
