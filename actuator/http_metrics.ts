/**
 * HTTP server figures for `/metrics`: requests by method, path and status, and their duration by
 * path. The path label is one of the endpoints this library serves, or what the application's
 * `pathLabel` names (a template such as `/api/pojo/:id`), else `other`: a label made of raw
 * paths would grow with every URL a client invents.
 *
 * @module
 */
import { Histogram } from "../bus/metrics.ts";
import type { MetricFamily } from "../bus/metrics.ts";
import { ACTUATOR_PATHS } from "./handler.ts";

/** The actuator's endpoints, each its own label (a monitor names its dashboard's by `pathLabel`). */
const KNOWN = new Set(["/api/event", ...ACTUATOR_PATHS]);
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
/** Labels kept apart; an application's `pathLabel` giving more is counted as `other`. */
const MAX_PATHS = 100;

/** Counts an HTTP server's requests; `metrics()` gives its families. */
export class HttpMetrics {
  readonly #requests = new Map<string, number>();
  readonly #durations = new Map<string, Histogram>();
  readonly #label: ((req: Request) => string | undefined) | undefined;

  /** @param pathLabel The application's label for a request of its own, if any. */
  constructor(pathLabel?: (req: Request) => string | undefined) {
    this.#label = pathLabel;
  }

  /** The path label of a request. */
  pathOf(req: Request): string {
    const path = new URL(req.url).pathname;
    if (KNOWN.has(path)) return path;
    let label: string | undefined;
    try {
      label = this.#label?.(req);
    } catch {
      label = undefined;
    }
    if (label === undefined || label.length > 100) return "other";
    return this.#durations.has(label) || this.#durations.size < MAX_PATHS ? label : "other";
  }

  /** A request that ended with `status` after `ms`. */
  observe(req: Request, path: string, status: number, ms: number): void {
    const method = METHODS.has(req.method) ? req.method : "other";
    const key = `${method}\0${path}\0${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    let h = this.#durations.get(path);
    if (h === undefined) this.#durations.set(path, h = new Histogram());
    h.observe(ms);
  }

  /**
   * Wraps a handler so that every answer is counted (a handler that throws counts as 500; the
   * duration is to the response's head, not the end of a streamed body). The handler is given
   * the request's path label too.
   */
  measure(
    handler: (req: Request, path: string) => Response | Promise<Response>,
  ): (req: Request) => Promise<Response> {
    return async (req) => {
      const start = performance.now();
      const path = this.pathOf(req);
      let status = 500;
      try {
        const res = await handler(req, path);
        status = res.status;
        return res;
      } finally {
        this.observe(req, path, status, performance.now() - start);
      }
    };
  }

  /** The families: `minimesh_http_requests_total`, `minimesh_http_request_duration_seconds`. */
  metrics(): MetricFamily[] {
    const requests: MetricFamily = {
      name: "minimesh_http_requests_total",
      help: "HTTP requests this server answered, by method, path and status.",
      type: "counter",
      samples: [...this.#requests].map(([key, value]) => {
        const [method, path, status] = key.split("\0");
        return { labels: { method, path, status }, value };
      }),
    };
    const duration: MetricFamily = {
      name: "minimesh_http_request_duration_seconds",
      help: "Time to answer an HTTP request (to the response's head), by path.",
      type: "histogram",
      samples: [...this.#durations].flatMap(([path, h]) => h.samples({ path })),
    };
    return [requests, duration];
  }
}
