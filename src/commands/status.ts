import { harnessCommand, notBuilt } from "./_command";

export default harnessCommand({
  name: "status",
  description: "(not built yet)",
  args: {},
  run: () => notBuilt("status"),
});
