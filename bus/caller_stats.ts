/**
 * What this instance's requests saw, per route and status, from the caller's side: counts,
 * latency for `/metrics` (Prometheus buckets) and a finer latency histogram whose changes the
 * instance reports to its monitor (the dashboard's per-route p50 and p99 come from those).
 * Requests are counted when their round trip is timed: every request while the mesh is on,
 * traced ones without it, and every fork-and-join (a local untraced request skips the clock,
 * which costs a third of it, see `_inbox.ts`).
 *
 * @module
 */
import { Histogram } from "./metrics.ts";
import type { MetricFamily } from "./metrics.ts";
import { UsualTime } from "./_usual.ts";

/** Routes kept apart; requests to further routes are counted under {@link OTHER_ROUTES}. */
export const MAX_CALLED_ROUTES = 1000;
/** The route label of requests beyond {@link MAX_CALLED_ROUTES} routes. */
export const OTHER_ROUTES = "_other";
/** Buckets per doubling of the fine histogram: each spans 9 %, so a quantile is within 4.5 %. */
export const FINE_STEPS = 8;
/** Fine buckets: from 1 µs to about 2^26 µs (67 s); longer times go to the last one. */
export const FINE_BUCKETS = 26 * FINE_STEPS;

/** The fine bucket of a duration in ms. */
export function fineBucket(ms: number): number {
  const us = ms * 1000;
  if (!(us > 1)) return 0;
  return Math.min(FINE_BUCKETS - 1, Math.floor(Math.log2(us) * FINE_STEPS));
}

/** The duration (ms) a fine bucket stands for: its geometric middle. */
export function fineValue(bucket: number): number {
  return 2 ** ((bucket + 0.5) / FINE_STEPS) / 1000;
}

/**
 * The `q` quantile (0-1) of fine buckets given as `[bucket, count]` pairs, in ms; undefined
 * when there are none.
 */
export function fineQuantile(buckets: Iterable<[number, number]>, q: number): number | undefined {
  const sorted = [...buckets].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((n, [, c]) => n + c, 0);
  if (total === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (const [b, n] of sorted) {
    seen += n;
    if (seen >= rank) return fineValue(b);
  }
  return fineValue(sorted[sorted.length - 1][0]);
}

/** Adds `[bucket, count]` pairs into `into`. */
export function addBuckets(into: Map<number, number>, pairs: Iterable<[number, number]>): void {
  for (const [b, n] of pairs) into.set(b, (into.get(b) ?? 0) + n);
}

/** One route's calls since the last report, as an application reports them. */
export interface CallReport {
  /** The route called. */
  route: string;
  /** Requests that ended (replied, failed or timed out). */
  calls: number;
  /** Of those, the ones with a status of 500 or more, or a timeout. */
  errors: number;
  /** Of those, timeouts. */
  timeouts: number;
  /** Fine latency buckets that changed: `[bucket, count]`. */
  latency: [number, number][];
}

class Called {
  readonly byStatus = new Map<number, number>();
  /** How long its requests usually take (the mesh's balancer reads it). */
  readonly usual = new UsualTime();
  readonly histogram = new Histogram();
  // Since the last report.
  calls = 0;
  errors = 0;
  newTimeouts = 0;
  readonly fine = new Map<number, number>();
}

/** A caller's figures per route and status. */
export class CallerStats {
  readonly #routes = new Map<string, Called>();

  /**
   * A request to `route` ended with `status` after `ms` (408: it timed out). A status outside
   * 100-599 (a peer's reply may carry anything) counts as 500, so that labels stay bounded.
   */
  record(route: string, status: number, ms: number): void {
    if (!(Number.isInteger(status) && status >= 100 && status <= 599)) status = 500;
    let c = this.#routes.get(route);
    if (c === undefined) {
      const key = this.#routes.size < MAX_CALLED_ROUTES ? route : OTHER_ROUTES;
      c = this.#routes.get(key);
      if (c === undefined) this.#routes.set(key, c = new Called());
    }
    c.byStatus.set(status, (c.byStatus.get(status) ?? 0) + 1);
    c.histogram.observe(ms);
    c.usual.add(ms);
    c.calls++;
    if (status === 408) c.newTimeouts++;
    if (status >= 500 || status === 408) c.errors++;
    addBuckets(c.fine, [[fineBucket(ms), 1]]);
  }

  /**
   * How long requests to `route` usually take (ms): a moving average of what the last few dozen
   * took, timeouts included; 0 before the first ends (or past the routes kept apart).
   */
  usualTime(route: string): number {
    return this.#routes.get(route)?.usual.ms ?? 0;
  }

  /** What changed since the last call, per route (routes without calls left out). */
  takeReport(): CallReport[] {
    const out: CallReport[] = [];
    for (const [route, c] of this.#routes) {
      if (c.calls === 0) continue;
      out.push({
        route,
        calls: c.calls,
        errors: c.errors,
        timeouts: c.newTimeouts,
        latency: [...c.fine],
      });
      c.calls = c.errors = c.newTimeouts = 0;
      c.fine.clear();
    }
    return out;
  }

  /** The caller-side families of `/metrics`. */
  metrics(): MetricFamily[] {
    const requests: MetricFamily = {
      name: "minimesh_client_requests_total",
      help: "Requests this instance made that ended, by route and status (408: timed out).",
      type: "counter",
      samples: [],
    };
    const timeouts: MetricFamily = {
      name: "minimesh_client_request_timeouts_total",
      help: "Requests this instance made that timed out, by route.",
      type: "counter",
      samples: [],
    };
    const duration: MetricFamily = {
      name: "minimesh_client_request_duration_seconds",
      help: "Time from sending a request to its reply, timeout or failure, by route.",
      type: "histogram",
      samples: [],
    };
    for (const [route, c] of this.#routes) {
      for (const [status, value] of c.byStatus) {
        requests.samples.push({ labels: { route, status: String(status) }, value });
      }
      timeouts.samples.push({ labels: { route }, value: c.byStatus.get(408) ?? 0 });
      duration.samples.push(...c.histogram.samples({ route }));
    }
    return [requests, timeouts, duration];
  }
}
