import { harnessCommand, notBuilt } from "./_command";

export default harnessCommand({
  name: "up",
  description: "(not built yet)",
  args: {},
  run: () => notBuilt("up"),
});
