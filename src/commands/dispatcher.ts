import { harnessCommand, notBuilt } from "./_command";

export default harnessCommand({
  name: "dispatcher",
  description: "(not built yet)",
  args: {},
  run: () => notBuilt("dispatcher"),
});
