/** An `--exec` setting the machine or the user cannot honour: its message is the one line printed. */
export class ExecSetupError extends Error {
  override name = "ExecSetupError";
}
