#!/usr/bin/env bun
import "./plain-output";
import "./db/dangling";
import { defineCommand, runMain } from "citty";
import pkg from "../package.json" with { type: "json" };

const main = defineCommand({
  meta: {
    name: "harness",
    version: pkg.version,
    description:
      "Run a task platform's roles on PostgreSQL and an object store, and prove its invariants",
  },
  subCommands: {
    migrate: () => import("./commands/migrate").then((m) => m.default),
    dispatcher: () => import("./commands/dispatcher").then((m) => m.default),
    worker: () => import("./commands/worker").then((m) => m.default),
    sink: () => import("./commands/sink").then((m) => m.default),
    task: () => import("./commands/task").then((m) => m.default),
    status: () => import("./commands/status").then((m) => m.default),
    keygen: () => import("./commands/keygen").then((m) => m.default),
    dlq: () => import("./commands/dlq").then((m) => m.default),
    queue: () => import("./commands/queue").then((m) => m.default),
    up: () => import("./commands/up").then((m) => m.default),
    verify: () => import("./commands/verify").then((m) => m.default),
    contracts: () => import("./commands/contracts").then((m) => m.default),
  },
});

void runMain(main);
