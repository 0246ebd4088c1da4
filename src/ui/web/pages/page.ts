/** What a page gets from the router. */
export interface PageContext {
  root: HTMLElement;
  params: string[];
  query: URLSearchParams;
  /** Aborted when the user leaves the page: stop polling. */
  signal: AbortSignal;
  /** Shows whether the last refresh worked (the header's live dot). */
  live(ok: boolean, text: string): void;
  /** Asks before a change; resolves true when confirmed. */
  confirm(title: string, text: string, ok: string): Promise<boolean>;
  /** Client-side navigation. */
  go(path: string): void;
}

export type Page = (ctx: PageContext) => void;

/** Calls `tick` now and then every `ms` until the page is left (never two at once). */
export function poll(ctx: PageContext, ms: number, tick: () => Promise<void>): void {
  const run = async () => {
    if (ctx.signal.aborted) return;
    try {
      await tick();
      ctx.live(true, "live");
    } catch (err) {
      if (ctx.signal.aborted) return;
      ctx.live(false, err instanceof Error ? err.message : "offline");
    }
    if (!ctx.signal.aborted) setTimeout(run, ms);
  };
  void run();
}

export function failure(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
