import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/state.ts",
  out: "./drizzle/state",
  schemaFilter: ["state"],
});
