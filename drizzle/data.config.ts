import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/data.ts",
  out: "./drizzle/data",
  schemaFilter: ["data"],
});
