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
import { MAX_REPORTED_ROUTES } from "../protocol/report.ts";
import type { AppReport } from "../protocol/report.ts";

const MAX_ROUTE_LENGTH = 200;
/** The most characters of route names one application's report may hold in all. */
export const MAX_ROUTE_CHARS = 16 * 1024;
/** An application's routes are taken again at most this often (they rarely change). */
export const ROUTES_INTERVAL_MS = 30_000;

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
  return report;
}

/** The figures of the applications in the mesh, as this monitor last heard them. */
export class AppStats {
  readonly #apps = new Map<string, AppFigures>();
  /** This monitor's own sessions that reported since the last share, and those whose routes changed. */
  readonly #reported = new Set<string>();
  readonly #routesChanged = new Set<string>();
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
    this.#apps.set(origin, {
      events: report.events,
      errors: report.errors,
      started: report.started,
      routes,
      rate: last ? per(report.events, last.events) : 0,
      errorRate: last ? per(report.errors, last.errors) : 0,
      at: now,
      routesAt: fresh ? now : last?.routesAt ?? now,
    });
    return last === undefined || String(last.routes) !== String(routes);
  }

  /** Records a report of one of this monitor's own sessions, to be shared. */
  own(origin: string, report: AppReport, now: number = Date.now()): void {
    if (this.update(origin, report, now)) this.#routesChanged.add(origin);
    this.#reported.add(origin);
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
      apps.push({ origin, report });
    }
    this.#shareAll = false;
    this.#reported.clear();
    this.#routesChanged.clear();
    return apps;
  }

  /** Forgets the applications not in `origins` (they left the mesh): bounded by the table. */
  retain(origins: ReadonlySet<string>): void {
    for (const origin of this.#apps.keys()) if (!origins.has(origin)) this.#apps.delete(origin);
  }
}
