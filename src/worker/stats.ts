import type { Outcome, TaskResult } from "./context";

/** What a worker did, for its final summary line. */
export class WorkerStats {
  private readonly startedAt = performance.now();
  private readonly outcomes = new Map<Outcome, number>();
  private alerts = 0;

  record(result: TaskResult): void {
    this.outcomes.set(result.outcome, (this.outcomes.get(result.outcome) ?? 0) + 1);
    if (result.outcome === "succeeded") this.alerts += result.alerts ?? 0;
  }

  count(outcome: Outcome): number {
    return this.outcomes.get(outcome) ?? 0;
  }

  summary(): Record<string, number | Record<string, number>> {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const succeeded = this.count("succeeded");
    return {
      wakeups: [...this.outcomes.values()].reduce((a, b) => a + b, 0),
      succeeded,
      alerts: this.alerts,
      seconds: Math.round(seconds * 1000) / 1000,
      tasks_per_second: seconds > 0 ? Math.round((succeeded / seconds) * 10) / 10 : 0,
      outcomes: Object.fromEntries(this.outcomes),
    };
  }
}
