import { harnessCommand, notBuilt } from "./_command";

export default harnessCommand({
  name: "contracts",
  description: "(not built yet)",
  args: {},
  run: () => notBuilt("contracts"),
});
