/**
 * The dispatcher's Prometheus metrics, kept in memory and rendered as text
 * exposition format on `GET /metrics`.
 */

const BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

type Labels = Record<string, string>;

const NEEDS_ESCAPE = /[\\"\n]/;
const escapeValue = (val: string) =>
  NEEDS_ESCAPE.test(val)
    ? val.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
    : val;

/** The series' label text, `k="v",…`: built on every request, so a plain loop, escaping only when needed. */
function key(labels: Labels): string {
  let out = "";
  for (const k in labels) {
    out += `${out === "" ? "" : ","}${k}="${escapeValue(labels[k] ?? "")}"`;
  }
  return out;
}

class Counter {
  readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, n] of this.values) lines.push(`${this.name}${k ? `{${k}}` : ""} ${n}`);
    return lines;
  }
}

class Histogram {
  readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  observe(labels: Labels, seconds: number): void {
    const k = key(labels);
    let s = this.series.get(k);
    if (s === undefined) {
      s = { counts: BUCKETS_S.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < BUCKETS_S.length; i++) {
      if (seconds <= (BUCKETS_S[i] ?? 0)) s.counts[i] = (s.counts[i] ?? 0) + 1;
    }
    s.sum += seconds;
    s.count += 1;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const sep = k ? `${k},` : "";
      BUCKETS_S.forEach((le, i) => {
        lines.push(`${this.name}_bucket{${sep}le="${le}"} ${s.counts[i] ?? 0}`);
      });
      lines.push(`${this.name}_bucket{${sep}le="+Inf"} ${s.count}`);
      lines.push(`${this.name}_sum${k ? `{${k}}` : ""} ${s.sum}`);
      lines.push(`${this.name}_count${k ? `{${k}}` : ""} ${s.count}`);
    }
    return lines;
  }
}

export interface Metrics {
  claims: Counter;
  refusals: Counter;
  outboxPublished: Counter;
  reaped: Counter;
  swept: Counter;
  latency: Histogram;
  render(gauges: { outboxBacklog: number | null }): string;
}

export function createMetrics(): Metrics {
  const claims = new Counter("harness_dispatcher_claims_total", "Task claims by outcome.");
  const refusals = new Counter(
    "harness_dispatcher_refusals_total",
    "Refused requests by endpoint and reason.",
  );
  const outboxPublished = new Counter(
    "harness_dispatcher_outbox_published_total",
    "Outbox rows published to their queue, by queue.",
  );
  const reaped = new Counter(
    "harness_dispatcher_leases_reaped_total",
    "Expired leases the reaper woke a task for.",
  );
  const swept = new Counter(
    "harness_dispatcher_queued_swept_total",
    "Queued tasks the sweep woke again, unclaimed for its period since their last wakeup.",
  );
  const latency = new Histogram(
    "harness_dispatcher_request_duration_seconds",
    "HTTP request latency by route and status.",
  );
  return {
    claims,
    refusals,
    outboxPublished,
    reaped,
    swept,
    latency,
    render({ outboxBacklog }) {
      const backlog = [
        "# HELP harness_dispatcher_outbox_backlog Outbox rows pending publication.",
        "# TYPE harness_dispatcher_outbox_backlog gauge",
        `harness_dispatcher_outbox_backlog ${outboxBacklog ?? "NaN"}`,
      ];
      const parts = [claims, refusals, outboxPublished, reaped, swept, latency].flatMap((m) =>
        m.render(),
      );
      return `${[...parts, ...backlog].join("\n")}\n`;
    },
  };
}
