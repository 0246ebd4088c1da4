import { harnessCommand, notBuilt } from "./_command";

export default harnessCommand({
  name: "verify",
  description: "(not built yet)",
  args: {},
  run: () => notBuilt("verify"),
});
