import { harnessCommand, notBuilt } from "./_command";

export default harnessCommand({
  name: "worker",
  description: "(not built yet)",
  args: {},
  run: () => notBuilt("worker"),
});
