import { defineCommand } from "citty";
import pkg from "../../package.json" with { type: "json" };

/** The command tree: one file per command, each loaded only when it runs. */
export const harness = defineCommand({
  meta: {
    name: "harness",
    version: pkg.version,
    description:
      "Run a task platform's roles on PostgreSQL and an object store, and prove its invariants",
  },
  subCommands: {
    migrate: () => import("./migrate").then((m) => m.default),
    dispatcher: () => import("./dispatcher").then((m) => m.default),
    worker: () => import("./worker").then((m) => m.default),
    sink: () => import("./sink").then((m) => m.default),
    task: () => import("./task").then((m) => m.default),
    status: () => import("./status").then((m) => m.default),
    keygen: () => import("./keygen").then((m) => m.default),
    dlq: () => import("./dlq").then((m) => m.default),
    queue: () => import("./queue").then((m) => m.default),
    up: () => import("./up").then((m) => m.default),
    verify: () => import("./verify").then((m) => m.default),
    contracts: () => import("./contracts").then((m) => m.default),
    ui: () => import("./ui").then((m) => m.default),
    user: () => import("./user").then((m) => m.default),
  },
});
