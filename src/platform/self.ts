/**
 * How to start another harness process: the compiled binary runs itself;
 * under `bun src/cli.ts` it is bun with the entry file.
 */
export function isCompiled(): boolean {
  return Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:/~BUN/");
}

export function selfArgv(): string[] {
  return isCompiled() ? [process.execPath] : [process.execPath, Bun.main];
}
