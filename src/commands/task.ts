import { harnessCommand, notBuilt } from "./_command";

export default harnessCommand({
  name: "task",
  description: "(not built yet)",
  args: {},
  run: () => notBuilt("task"),
});
