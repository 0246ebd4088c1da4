import type { RoleEnv } from "../platform/launcher";
import type { NetworkFault } from "./chaos";
import { type LeaseGrant, LeaseTap } from "./http-tap";
import { FaultProxy } from "./proxy";

/**
 * verify's network: one fault proxy per link, a link being one role's
 * connections to one upstream (PostgreSQL, a dispatcher, later the broker).
 * `route` rewrites a role's URLs to go through its links before the role
 * starts; a network fault then hits one link or all of them. Links to a
 * dispatcher are watched for the leases it grants (./http-tap.ts).
 */

export interface NetTarget {
  /** The upstream's name in link names: `worker-1→postgres`. */
  label: string;
  url: string;
}

/** The variables through which each role reaches an upstream (QUEUE_URL: the broker, when set). */
const ROUTED: Record<string, readonly string[]> = {
  dispatcher: ["STATE_DATABASE_URL", "QUEUE_URL"],
  worker: ["STATE_DATABASE_URL", "DISPATCHER_URL", "QUEUE_URL"],
  sink: ["STATE_DATABASE_URL", "DATA_DATABASE_URL", "QUEUE_URL"],
};

/** A URL naming one host:port; undefined for anything else (e.g. a list of NATS servers). */
function singleHost(value: string | undefined): URL | undefined {
  if (value === undefined || !URL.canParse(value)) return undefined;
  const url = new URL(value);
  return /^\d*$/.test(url.port) ? url : undefined;
}

const DEFAULT_PORTS: Record<string, number> = { "postgres:": 5432, "http:": 80, "nats:": 4222 };

function hostPort(url: URL): string {
  return `${url.hostname}:${url.port || DEFAULT_PORTS[url.protocol] || 0}`;
}

export class FaultNet {
  private readonly proxies = new Map<string, FaultProxy>();
  private readonly taps: LeaseTap[] = [];
  private readonly targets = new Map<string, string>();

  constructor(targets: readonly NetTarget[]) {
    for (const t of targets) {
      const url = singleHost(t.url);
      if (url !== undefined && !this.targets.has(hostPort(url)))
        this.targets.set(hostPort(url), t.label);
    }
  }

  /** The role's environment with every URL it uses rerouted through its links. */
  route(role: string, env: RoleEnv): RoleEnv {
    const routed = { ...env };
    for (const name of ROUTED[role.replace(/-\d+$/, "")] ?? []) {
      const url = singleHost(env[name]);
      if (url === undefined) continue;
      const label = this.targets.get(hostPort(url));
      if (label === undefined) continue;
      const proxy = this.link(`${role}→${label}`, url);
      url.hostname = "127.0.0.1";
      url.port = String(proxy.port);
      routed[name] = url.toString();
    }
    return routed;
  }

  /** Every link's name, sorted (the schedule picks among them). */
  links(): string[] {
    return [...this.proxies.keys()].sort();
  }

  /** Every lease seen granted on a worker's link to a dispatcher. */
  leaseGrants(): LeaseGrant[] {
    return this.taps.flatMap((t) => t.grants);
  }

  /**
   * Starts a fault on one link (or "all"); returns how many links it hit, how
   * many open connections it reset or held, and when it ends.
   */
  apply(link: string, f: NetworkFault): { links: number; connections: number; endsAt: number } {
    const proxies = link === "all" ? [...this.proxies.values()] : [this.proxy(link)];
    const endsAt = Date.now() + f.ms;
    const hit = (connections: number) => ({ links: proxies.length, connections, endsAt });
    if (f.fault === "latency") {
      for (const p of proxies) p.setLatency(f.latencyMs);
      setTimeout(() => {
        for (const p of proxies) p.setLatency(0);
      }, f.ms);
      return hit(proxies.reduce((n, p) => n + p.openConnections, 0));
    }
    if (f.fault === "blackhole") {
      for (const p of proxies) p.blackhole(f.ms);
      return hit(proxies.reduce((n, p) => n + p.openConnections, 0));
    }
    return hit(proxies.reduce((n, p) => n + p.reset(f.ms), 0));
  }

  stop(): void {
    for (const p of this.proxies.values()) p.stop();
  }

  private proxy(link: string): FaultProxy {
    const p = this.proxies.get(link);
    if (p === undefined) throw new Error(`no network link ${link}`);
    return p;
  }

  private link(name: string, url: URL): FaultProxy {
    const existing = this.proxies.get(name);
    if (existing !== undefined) return existing;
    const watched = url.protocol === "http:";
    const tap = watched ? new LeaseTap() : undefined;
    if (tap !== undefined) this.taps.push(tap);
    const [host, port] = hostPort(url).split(":");
    const upstream = { host: host ?? "127.0.0.1", port: Number(port) };
    // A proxy listens on a port the kernel picks; it must not be one an upstream was
    // given and has yet to take (a dispatcher not started yet): that one would then fail.
    const taken = new Set([...this.targets.keys()].map((hp) => Number(hp.split(":")[1])));
    const refused: FaultProxy[] = [];
    let proxy = new FaultProxy(name, upstream, tap);
    while (taken.has(proxy.port)) {
      refused.push(proxy);
      proxy = new FaultProxy(name, upstream, tap);
    }
    for (const r of refused) r.stop();
    this.proxies.set(name, proxy);
    return proxy;
  }
}
