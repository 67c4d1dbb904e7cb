/**
 * What the applications report of themselves, for the dashboard: their public routes and how
 * many events their functions handled and failed. A minimesh application sends a `stats` frame
 * to its monitor every five seconds (only to a monitor that selected the
 * `minimesh.v1` subprotocol; Java monitors never see one); each monitor shares what its own
 * sessions reported on `service.monitor` partition 0, so every monitor shows the whole mesh.
 * Java applications report nothing: they are listed without routes or rates.
 *
 * @module
 */
import {
  MAX_REPORTED_BUCKETS,
  MAX_REPORTED_CALLS,
  MAX_REPORTED_ROUTES,
} from "../protocol/report.ts";
import type { AppReport } from "../protocol/report.ts";
import { addBuckets, FINE_BUCKETS } from "../bus/caller_stats.ts";
import type { CallReport } from "../bus/caller_stats.ts";

const MAX_ROUTE_LENGTH = 200;
/** The most characters of route names one application's report may hold in all. */
export const MAX_ROUTE_CHARS = 16 * 1024;
/** An application's routes are taken again at most this often (they rarely change). */
export const ROUTES_INTERVAL_MS = 30_000;
/** Rates kept per application for its history: five minutes of reports. */
export const HISTORY = 60;

/** What a monitor knows of one application's figures. */
export interface AppFigures {
  events: number;
  errors: number;
  started: string;
  routes: string[];
  /** Events per second between its last two reports (0 after the first). */
  rate: number;
  /** Errors per second, likewise. */
  errorRate: number;
  /** When the last report arrived here (ms). */
  at: number;
  /** When its routes were last taken (ms). */
  routesAt: number;
  /** Whether its Kafka client reaches the broker, if it says. */
  kafka: boolean | null;
  /** Its HTTP port, if it runs a server. */
  http: number | null;
  /** The address its connection comes from (its monitor's view). */
  host: string | null;
  /** Its rates of the last reports, oldest first. */
  history: number[];
}

const isCount = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

// A report's `calls`, checked field by field (a hostile session sends anything).
function parseCalls(v: unknown): AppReport["calls"] {
  const c = v as { ms?: unknown; routes?: unknown } | null;
  if (c === null || typeof c !== "object" || Array.isArray(c)) {
    throw new TypeError("stats.calls must be a map");
  }
  if (typeof c.ms !== "number" || !(c.ms > 0) || c.ms > 3_600_000) {
    throw new TypeError("stats.calls.ms must be a positive number of ms, at most an hour");
  }
  if (!Array.isArray(c.routes) || c.routes.length > MAX_REPORTED_CALLS) {
    throw new TypeError(`stats.calls.routes must be a list of at most ${MAX_REPORTED_CALLS}`);
  }
  let buckets = 0;
  const routes = c.routes.map((x): CallReport => {
    const r = x as Record<string, unknown> | null;
    if (
      r === null || typeof r !== "object" || typeof r.route !== "string" ||
      r.route.length > MAX_ROUTE_LENGTH || !isCount(r.calls) || !isCount(r.errors) ||
      !isCount(r.timeouts) || !Array.isArray(r.latency)
    ) throw new TypeError("stats.calls.routes holds a malformed entry");
    if ((buckets += r.latency.length) > MAX_REPORTED_BUCKETS) {
      throw new TypeError(`stats.calls holds more than ${MAX_REPORTED_BUCKETS} latency buckets`);
    }
    const latency = r.latency.map((p): [number, number] => {
      if (
        !Array.isArray(p) || p.length !== 2 || !isCount(p[0]) || p[0] >= FINE_BUCKETS ||
        !isCount(p[1])
      ) throw new TypeError("stats.calls latency buckets must be [bucket, count] pairs");
      return [p[0], p[1]];
    });
    return { route: r.route, calls: r.calls, errors: r.errors, timeouts: r.timeouts, latency };
  });
  return { ms: c.ms, routes };
}

// Adds `b`'s calls into `a` (a session's reports between two shares go as one).
function mergeCalls(a: AppReport["calls"], b: AppReport["calls"]): AppReport["calls"] {
  if (a === undefined) return b;
  if (b === undefined) return a;
  const byRoute = new Map(a.routes.map((r) => [r.route, { ...r, latency: [...r.latency] }]));
  for (const r of b.routes) {
    const into = byRoute.get(r.route);
    if (into === undefined) {
      if (byRoute.size < MAX_REPORTED_CALLS) byRoute.set(r.route, r);
      continue;
    }
    into.calls += r.calls;
    into.errors += r.errors;
    into.timeouts += r.timeouts;
    const buckets = new Map(into.latency);
    addBuckets(buckets, r.latency);
    into.latency = [...buckets];
  }
  // Still within a frame's bounds: the busiest routes' buckets first.
  let total = 0;
  const routes = [...byRoute.values()].sort((x, y) => y.calls - x.calls)
    .filter((r) => (total += r.latency.length) <= MAX_REPORTED_BUCKETS);
  return { ms: a.ms + b.ms, routes };
}

/**
 * Reads a report (the body of a `stats` frame, or one entry of a monitor's `stats` message).
 *
 * @throws {TypeError} Naming the field that is missing or malformed.
 */
export function parseReport(body: unknown): AppReport {
  const b = body as Record<string, unknown> | null;
  if (b === null || typeof b !== "object" || Array.isArray(b)) {
    throw new TypeError("stats must be a map");
  }
  const count = (k: string) => {
    const v = b[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      throw new TypeError(`stats.${k} must be a non-negative integer`);
    }
    return v;
  };
  const started = b.started;
  if (typeof started !== "string" || Number.isNaN(Date.parse(started))) {
    throw new TypeError("stats.started must be a date");
  }
  const report: AppReport = {
    events: count("events"),
    errors: count("errors"),
    started: started.slice(0, 40),
  };
  if (b.routes !== undefined) {
    const r = b.routes;
    if (!Array.isArray(r) || !r.every((x) => typeof x === "string")) {
      throw new TypeError("stats.routes must be a list of route names");
    }
    // Bounded in count, length and total: what a session reports is kept, shared with every
    // monitor and pushed to every dashboard.
    const routes: string[] = [];
    let chars = 0;
    for (const x of (r as string[]).slice(0, MAX_REPORTED_ROUTES)) {
      const name = x.slice(0, MAX_ROUTE_LENGTH);
      if ((chars += name.length) > MAX_ROUTE_CHARS) break;
      routes.push(name);
    }
    report.routes = routes.sort();
  }
  if (b.calls !== undefined) report.calls = parseCalls(b.calls);
  if (b.kafka !== undefined) {
    if (typeof b.kafka !== "boolean") throw new TypeError("stats.kafka must be true or false");
    report.kafka = b.kafka;
  }
  if (b.http !== undefined) {
    if (!isCount(b.http) || b.http < 1 || b.http > 65535) {
      throw new TypeError("stats.http must be a port");
    }
    report.http = b.http;
  }
  if (b.host !== undefined) {
    if (typeof b.host !== "string" || b.host.length > 100 || !/^[\w.:%-]+$/.test(b.host)) {
      throw new TypeError("stats.host must be an address");
    }
    report.host = b.host;
  }
  return report;
}

/** The figures of the applications in the mesh, as this monitor last heard them. */
export class AppStats {
  readonly #apps = new Map<string, AppFigures>();
  /** This monitor's own sessions that reported since the last share, and those whose routes changed. */
  readonly #reported = new Set<string>();
  readonly #routesChanged = new Set<string>();
  /** Own sessions' calls not yet shared. */
  readonly #calls = new Map<string, AppReport["calls"]>();
  /** A monitor started: the next share carries every route. */
  #shareAll = false;

  /** The figures of `origin`, if it reported. */
  get(origin: string): AppFigures | undefined {
    return this.#apps.get(origin);
  }

  /**
   * Records a report of `origin`.
   *
   * @returns Whether its routes changed.
   */
  update(origin: string, report: AppReport, now: number = Date.now()): boolean {
    const last = this.#apps.get(origin);
    // Routes that change more often than an application's routes do are not taken each time.
    const fresh = report.routes !== undefined &&
      (last === undefined || now - last.routesAt >= ROUTES_INTERVAL_MS);
    const routes = (fresh ? report.routes : last?.routes) ?? [];
    // A restarted instance (new start time) counts from zero again: no rate from its old counts.
    const seconds = last && last.started === report.started ? (now - last.at) / 1000 : 0;
    const per = (n: number, before: number) =>
      seconds > 0 && n >= before ? Math.round(((n - before) / seconds) * 10) / 10 : 0;
    const rate = last ? per(report.events, last.events) : 0;
    const history = last?.history ?? [];
    history.push(rate);
    if (history.length > HISTORY) history.shift();
    this.#apps.set(origin, {
      events: report.events,
      errors: report.errors,
      started: report.started,
      routes,
      rate,
      errorRate: last ? per(report.errors, last.errors) : 0,
      at: now,
      routesAt: fresh ? now : last?.routesAt ?? now,
      kafka: report.kafka ?? null,
      http: report.http ?? null,
      host: report.host ?? null,
      history,
    });
    return last === undefined || String(last.routes) !== String(routes);
  }

  /** Records a report of one of this monitor's own sessions, to be shared. */
  own(origin: string, report: AppReport, now: number = Date.now()): void {
    if (this.update(origin, report, now)) this.#routesChanged.add(origin);
    this.#reported.add(origin);
    if (report.calls !== undefined) {
      this.#calls.set(origin, mergeCalls(this.#calls.get(origin), report.calls));
    }
  }

  /** The next share carries every route of every own session (a monitor started). */
  shareAllRoutes(): void {
    this.#shareAll = true;
  }

  /**
   * What to tell the other monitors now: the own sessions that reported since the last share
   * (every one of `sessions` after {@link shareAllRoutes}), with their routes only when they
   * changed. Forgets the applications not in `present` first.
   */
  takeShare(
    sessions: readonly string[],
    present: ReadonlySet<string>,
  ): { origin: string; report: AppReport }[] {
    this.retain(present);
    const all = this.#shareAll;
    const apps: { origin: string; report: AppReport }[] = [];
    for (const origin of all ? sessions : this.#reported) {
      const f = this.#apps.get(origin);
      if (f === undefined) continue;
      const report: AppReport = { events: f.events, errors: f.errors, started: f.started };
      if (all || this.#routesChanged.has(origin)) report.routes = f.routes;
      const calls = this.#calls.get(origin);
      if (calls !== undefined) report.calls = calls;
      if (f.kafka !== null) report.kafka = f.kafka;
      if (f.http !== null) report.http = f.http;
      if (f.host !== null) report.host = f.host;
      apps.push({ origin, report });
    }
    this.#shareAll = false;
    this.#reported.clear();
    this.#routesChanged.clear();
    this.#calls.clear();
    return apps;
  }

  /** Forgets the applications not in `origins` (they left the mesh): bounded by the table. */
  retain(origins: ReadonlySet<string>): void {
    for (const origin of this.#apps.keys()) if (!origins.has(origin)) this.#apps.delete(origin);
  }
}
