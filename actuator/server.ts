/**
 * Serves an application's HTTP: the actuator endpoints, Event over HTTP, and the
 * application's own routes, through the runtime's adapter (`#runtime`).
 *
 * @module
 */
import { serve } from "#runtime";
import type { Platform } from "../bus/platform.ts";
import { logger } from "../bus/_log.ts";
import { serverLimits, serverTls } from "../runtime/server.ts";
import type { RunningServer } from "../runtime/server.ts";
import { actuatorHandler } from "./handler.ts";
import { eventApiMaxBytes } from "./event_api.ts";
import { jsonError } from "./responses.ts";
import { HttpMetrics } from "./http_metrics.ts";
import { openHttpTrace } from "./tracing.ts";
import { telemetryOf } from "../bus/platform.ts";
import type { ActuatorOptions } from "./handler.ts";

const log = logger("http");

/** Options of {@link startHttp}. */
export interface HttpOptions extends ActuatorOptions {
  /** Port (default: config `server.port`, else 8085; 0 picks a free one). */
  port?: number;
  /** Interface (default: config `server.host`, else 0.0.0.0). */
  hostname?: string;
  /** The application's own routes; return undefined for "not mine". */
  routes?: (req: Request) => Response | undefined | Promise<Response | undefined>;
  /**
   * The `path` label of `/metrics`' HTTP figures for a request to the application's own routes
   * (a template such as `/api/pojo/:id`); without it, or when it returns undefined, `other`.
   * At most 100 labels are kept apart.
   */
  pathLabel?: (req: Request) => string | undefined;
}

/**
 * Starts the HTTP server of an application.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { Platform } from "@minimesh/core";
 * import { startHttp } from "@minimesh/core/actuator";
 * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
 * await using server = await startHttp(platform, {
 *   port: 0, // a free port
 *   hostname: "127.0.0.1",
 *   routes: (req) => new URL(req.url).pathname === "/hi" ? new Response("hello") : undefined,
 * });
 * const res = await fetch(`http://127.0.0.1:${server.port}/hi`);
 * assert.equal(await res.text(), "hello");
 * ```
 */
export async function startHttp(
  platform: Platform,
  options: HttpOptions = {},
): Promise<RunningServer> {
  const actuator = actuatorHandler(platform, options);
  const http = new HttpMetrics(options.pathLabel);
  const telemetry = telemetryOf(platform);
  const offMetrics = platform.addMetricSource(() => http.metrics());
  const port = options.port ?? platform.config.getNumber("server.port", 8085);
  const tls = serverTls(platform.config);
  const server = await serve({
    port,
    hostname: options.hostname ?? platform.config.getString("server.host", "0.0.0.0"),
    wsPrefix: "/ws/",
    tls,
    limits: serverLimits(platform.config, {
      maxBodyBytes: eventApiMaxBytes(platform),
      maxFrameBytes: 1024, // no websocket service here
    }),
    fetch: http.measure(async (req, path) => {
      const traced = openHttpTrace(req, `${req.method} ${path}`, telemetry);
      try {
        return traced(
          (await actuator(req)) ?? (await options.routes?.(req)) ??
            jsonError(404, `Resource not found: ${new URL(req.url).pathname}`),
        );
      } catch (e) {
        // The detail is for the log; the client learns only that it failed.
        log.error("{method} {url} failed: {message}", {
          method: req.method,
          url: req.url.slice(0, 200),
          message: (e as Error).message,
        });
        return traced(jsonError(500, "Internal error"));
      }
    }),
    handlers: {
      open: (s) => s.close(1008, "No websocket service here"),
      message: () => {},
      close: () => {},
    },
  });
  platform.httpPort = server.port;
  log.info("HTTP server running on port {port}{tls}", {
    port: server.port,
    tls: tls ? " (TLS)" : "",
  });
  // Platform.stop: stop accepting first, finish the requests in progress, close last.
  const off = platform.onStop({
    name: `HTTP server on port ${server.port}`,
    drain: () => server.drain(),
    pending: () => server.pending,
    stop: () => server.close(),
  });
  const close = () => {
    off();
    offMetrics();
    if (platform.httpPort === server.port) platform.httpPort = undefined;
    return server.close();
  };
  return {
    port: server.port,
    get pending() {
      return server.pending;
    },
    drain: () => server.drain(),
    close,
    [Symbol.asyncDispose]: close,
  };
}
