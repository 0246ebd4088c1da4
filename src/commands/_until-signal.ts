/**
 * A long-running command's end: on SIGTERM or SIGINT, stop what runs (once)
 * and exit 0; if stopping fails, say so in one line and exit 1.
 */
export async function stopOnSignal(
  command: string,
  running: { stop(): Promise<unknown> },
): Promise<never> {
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      running.stop().then(
        () => resolve(),
        (err: unknown) => {
          process.stderr.write(`harness ${command}: stopping: ${String(err)}\n`);
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  process.exit(0);
}
