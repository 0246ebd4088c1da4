import { harnessCommand, notBuilt } from "./_command";

export default harnessCommand({
  name: "dlq",
  description: "(not built yet)",
  args: {},
  run: () => notBuilt("dlq"),
});
