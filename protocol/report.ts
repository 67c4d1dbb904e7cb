/**
 * What an application reports of itself to its monitor for the dashboard (see
 * presence/app_stats.ts): its public routes and how many events its functions handled and
 * failed. Sent as a `stats` frame every {@link STATS_INTERVAL_MS}, only to a monitor that
 * selected the `minimesh.v1` subprotocol.
 *
 * @module
 */
import type { Platform } from "../bus/platform.ts";

/** How often an application reports (milliseconds), and a monitor shares the reports. */
export const STATS_INTERVAL_MS = 5000;
/** The most routes a report carries: a 64 KB frame holds about as many. */
export const MAX_REPORTED_ROUTES = 500;

/** One application's report. */
export interface AppReport {
  /** Events its functions finished since it started. */
  events: number;
  /** Of those, the ones that threw or rejected. */
  errors: number;
  /** When it started (ISO-8601). */
  started: string;
  /** Its public routes, sorted; absent when unchanged since its last report on a connection. */
  routes?: string[];
}

/**
 * The reports of `platform`: `next()` gives the next one, with the routes only when they
 * changed since the last one; `reset()` (on a new connection) makes the next one carry them.
 */
export function reporter(platform: Platform): { next(): AppReport; reset(): void } {
  let sent: string | undefined;
  return {
    next() {
      let events = 0;
      let errors = 0;
      const routes: string[] = [];
      for (const r of platform.routes()) {
        events += r.events;
        errors += r.errors;
        if (!r.isPrivate && routes.length < MAX_REPORTED_ROUTES) routes.push(r.route);
      }
      const report: AppReport = { events, errors, started: platform.startTime.toISOString() };
      const key = routes.join(",");
      if (key !== sent) {
        sent = key;
        report.routes = routes;
      }
      return report;
    },
    reset() {
      sent = undefined;
    },
  };
}
