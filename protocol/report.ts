/**
 * What an application reports of itself to its monitor for the dashboard (see
 * presence/app_stats.ts): its public routes, how many events its functions handled and
 * failed, what its own requests saw per route since the last report (the dashboard's route
 * view), whether its Kafka client reaches the broker, and its HTTP port. Sent as a `stats`
 * frame at the first look at its monitor (every 3 s) {@link STATS_INTERVAL_MS} after the last
 * (so every 6 s), only to a monitor that selected the `minimesh.v1`
 * subprotocol.
 *
 * @module
 */
import type { Platform } from "../bus/platform.ts";
import { inboxOf } from "../bus/platform.ts";
import type { CallReport } from "../bus/caller_stats.ts";

/**
 * The least time between an application's regular reports (milliseconds), and how often a monitor
 * shares the reports.
 */
export const STATS_INTERVAL_MS = 5000;
/** The most routes a report carries: a 64 KB frame holds about as many. */
export const MAX_REPORTED_ROUTES = 500;
/** The most called routes a report carries (the busiest), and latency buckets in all. */
export const MAX_REPORTED_CALLS = 50;
export const MAX_REPORTED_BUCKETS = 2000;

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
  /** What its requests saw per route over the last `ms` (absent when it made none). */
  calls?: { ms: number; routes: CallReport[] };
  /** Whether its Kafka client reaches the broker. */
  kafka?: boolean;
  /** The port of its HTTP server (`startHttp`), if it runs one. */
  http?: number;
  /**
   * The address its connection comes from: set by its monitor when it shares the report with
   * the other monitors (what an application says here is replaced).
   */
  host?: string;
}

// The busiest routes' calls, within the report's bounds.
function boundedCalls(calls: CallReport[]): CallReport[] {
  const out: CallReport[] = [];
  let buckets = 0;
  for (const c of calls.sort((a, b) => b.calls - a.calls)) {
    if (out.length >= MAX_REPORTED_CALLS) break;
    if ((buckets += c.latency.length) > MAX_REPORTED_BUCKETS) break;
    out.push(c);
  }
  return out;
}

/** An application's reports, one after the other (see {@link reporter}). */
export interface Reports {
  /** The next report. */
  next(): AppReport;
  /** Makes the next report carry the routes (a new connection). */
  reset(): void;
  /**
   * Whether a report is due now, not at the next interval: Kafka turned unreachable or
   * reachable again, which the monitor acts on (it drains an app that cannot reach Kafka).
   */
  urgent(): boolean;
  /**
   * Calls `listener` when a report may have turned urgent; returns what stops it. Absent:
   * {@link Reports.urgent} has to be looked at now and then.
   */
  onUrgent?(listener: () => void): () => void;
}

/**
 * The reports of `platform`: `next()` gives the next one, with the routes only when they
 * changed since the last one; `reset()` (on a new connection) makes the next one carry them.
 * `kafkaUp` says whether its Kafka client reaches the broker; `onKafka`, when given, calls its
 * listener whenever that changes.
 */
export function reporter(
  platform: Platform,
  kafkaUp?: () => boolean,
  onKafka?: (listener: () => void) => () => void,
): Reports {
  let sent: string | undefined;
  let last = performance.now();
  let kafkaSent: boolean | undefined;
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
      const now = performance.now();
      const calls = inboxOf(platform).calls.takeReport();
      if (calls.length > 0) {
        report.calls = { ms: Math.round(now - last), routes: boundedCalls(calls) };
      }
      last = now;
      if (kafkaUp !== undefined) report.kafka = kafkaSent = kafkaUp();
      if (platform.httpPort !== undefined) report.http = platform.httpPort;
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
    urgent() {
      return kafkaUp !== undefined && kafkaSent !== undefined && kafkaUp() !== kafkaSent;
    },
    onUrgent: onKafka,
  };
}
