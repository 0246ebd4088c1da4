import { describe, expect, test } from "bun:test";
import { refusedName } from "../../../src/worker/exec/env";
import { INIT_NAME, type LaunchPlan, launchArgv } from "../../../src/worker/exec/launch";

const plan: LaunchPlan = {
  fence: "namespace",
  tools: { setpriv: "/s", prlimit: "/p", unshare: "/u", sh: "/sh" },
  userNamespace: false,
  noNetwork: false,
  limits: { openFiles: 64, memoryBytes: undefined, cpuSeconds: undefined },
  runAs: undefined,
};

describe("launchArgv", () => {
  test("namespace fence: parent-death signal, PID namespace with its init, limits, then the program", () => {
    const argv = launchArgv(
      { ...plan, noNetwork: true, limits: { openFiles: 64, memoryBytes: 1024, cpuSeconds: 5 } },
      ["/bin/prog", "a"],
    );
    expect(argv.slice(0, 4)).toEqual(["/s", "--pdeathsig", "KILL", "--"]);
    expect(argv.slice(4, 11)).toEqual([
      "/u",
      "--pid",
      "--fork",
      "--kill-child=KILL",
      "--mount-proc",
      "--net",
      "--",
    ]);
    expect(argv.indexOf(INIT_NAME)).toBeGreaterThan(argv.indexOf("/sh"));
    expect(argv.slice(-7)).toEqual([
      "/p",
      "--nofile=64",
      "--as=1024",
      "--cpu=5:6",
      "--",
      "/bin/prog",
      "a",
    ]);
  });

  test("another user: switched last, inside the namespace; unprivileged: a user namespace", () => {
    const runAs = { name: "nobody", uid: 65534, gid: 65534 };
    const argv = launchArgv({ ...plan, runAs }, ["/bin/prog"]);
    expect(argv.slice(-7)).toEqual([
      "/s",
      "--reuid=65534",
      "--regid=65534",
      "--init-groups",
      "--no-new-privs",
      "--",
      "/bin/prog",
    ]);
    expect(launchArgv({ ...plan, userNamespace: true }, ["/x"])).toContain("--map-current-user");
  });

  test("group fence: limits, then the parent-death signal on the program itself", () => {
    expect(launchArgv({ ...plan, fence: "group" }, ["/bin/prog"])).toEqual([
      "/p",
      "--nofile=64",
      "--",
      "/s",
      "--pdeathsig",
      "KILL",
      "--",
      "/bin/prog",
    ]);
  });
});

describe("refusedName", () => {
  test("worker configuration and credentials are never passed; the user's own names are", () => {
    for (const name of [
      "DATABASE_URL",
      "INTERNAL_AUTH_TOKEN",
      "S3_SECRET_ACCESS_KEY",
      "CAPABILITY_SIGNING_KEY",
      "UI_AUTH_TOKEN",
      "QUEUE_URL",
      "PGPASSWORD",
      "AWS_SECRET_ACCESS_KEY",
      "HARNESS_TASK_ID",
      "PATH",
      "HOME",
      "1X",
      "A-B",
    ]) {
      expect(refusedName(name), name).toBeDefined();
    }
    for (const name of ["REPORT_TO", "MY_API_HOST", "LANG", "TZ"])
      expect(refusedName(name), name).toBeUndefined();
  });
});
