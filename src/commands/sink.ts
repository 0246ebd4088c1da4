import { harnessCommand, notBuilt } from "./_command";

export default harnessCommand({
  name: "sink",
  description: "(not built yet)",
  args: {},
  run: () => notBuilt("sink"),
});
