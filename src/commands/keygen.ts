import { harnessCommand, notBuilt } from "./_command";

export default harnessCommand({
  name: "keygen",
  description: "(not built yet)",
  args: {},
  run: () => notBuilt("keygen"),
});
