/**
 * Actuator endpoints as a plain `Request` → `Response` handler (docs/wire.md, "HTTP"): `/info`,
 * `/info/lib`, `/info/routes`, `/env`, `/health`, `/livenessprobe`, `/metrics` (Prometheus
 * text; protected as the informational endpoints are), and Event over HTTP at
 * `POST /api/event`. No runtime-specific code: serve it with any server (see `server.ts`).
 *
 * @module
 */
import process from "node:process";
import type { Platform } from "../bus/platform.ts";
import { PostOffice } from "../bus/post_office.ts";
import { statusOf } from "../bus/platform.ts";
import { libraries } from "../bus/libraries.ts";
import { runtime } from "../bus/process_metrics.ts";
import { prometheusText } from "../bus/metrics.ts";
import { eventApi } from "./event_api.ts";
import { accessRule } from "./access.ts";
import type { AuthorizeRequest } from "./access.ts";
import { elapsedText } from "../protocol/format.ts";
import { json, jsonError } from "./responses.ts";

/** Options of {@link actuatorHandler}. */
export interface ActuatorOptions {
  /** Extra `/info` content under `more` (the presence monitor's tables, for example). */
  more?: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Personality shown in `/info` (default: config `application.personality`, or APP). */
  personality?: string;
  /**
   * The application's own check of who may call `/api/event` and the informational endpoints,
   * besides `api.tokens` and `protect.info.endpoints` (see `access.ts`).
   */
  authorize?: AuthorizeRequest;
}

interface Dependency {
  route: string;
  required: boolean;
}

/** The informational endpoints an actuator serves (besides `/api/event`). */
export const ACTUATOR_PATHS: readonly string[] = [
  "/info",
  "/info/lib",
  "/info/routes",
  "/env",
  "/metrics",
  "/health",
  "/livenessprobe",
];

/**
 * The actuator handler of a platform. Returns `undefined` for paths it does not serve, so it
 * can sit in front of an application's own routes.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { Platform } from "@minimesh/core";
 * import { actuatorHandler } from "@minimesh/core/actuator";
 * const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
 * const handle = actuatorHandler(platform);
 * const res = await handle(new Request("http://localhost/livenessprobe"));
 * assert.equal(await res?.text(), "OK");
 * ```
 */
export function actuatorHandler(
  platform: Platform,
  options: ActuatorOptions = {},
): (req: Request) => Promise<Response | undefined> {
  const c = platform.config;
  let healthy = true;
  const infoCache = new Map<string, { at: number; value: unknown }>();
  const app = () => ({
    name: platform.name,
    version: platform.version,
    description: c.getString("info.app.description", ""),
  });
  const personality = options.personality ?? c.getString("application.personality", "APP");
  const api = eventApi(platform);
  const access = accessRule(platform, options.authorize);

  const dependencies = (): Dependency[] => [
    ...c.getList("mandatory.health.dependencies").map((route) => ({ route, required: true })),
    ...c.getList("optional.health.dependencies").map((route) => ({ route, required: false })),
  ];

  const check = async (d: Dependency): Promise<Record<string, unknown>> => {
    const po = new PostOffice({}, platform);
    const entry: Record<string, unknown> = { route: d.route, required: d.required };
    if (!po.exists(d.route)) {
      return { ...entry, status_code: 404, message: `Please check - ${d.route} not found` };
    }
    const cached = infoCache.get(d.route);
    let info = cached && Date.now() - cached.at < 5000 ? cached.value : undefined;
    if (info === undefined) {
      const r = await po.request({ to: d.route, headers: { type: "info" } }, {
        timeout: 3000,
        timeoutException: false,
      }).catch(() => undefined);
      if (r && !r.isError) {
        info = r.body;
        infoCache.set(d.route, { at: Date.now(), value: info });
      }
    }
    if (info && typeof info === "object" && !Array.isArray(info)) Object.assign(entry, info);
    try {
      const r = await po.request({ to: d.route, headers: { type: "health" } }, {
        timeout: 10_000,
        timeoutException: false,
      });
      entry.status_code = r.status;
      entry.message = r.isError ? r.error : r.body;
    } catch (e) {
      entry.status_code = statusOf(e);
      entry.message = (e as Error).message;
    }
    return entry;
  };

  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname.replace(/\/+$/, "") || "/";
    if (path === "/api/event") return (await access(req, "event")) ?? api(req);
    if (!ACTUATOR_PATHS.includes(path)) return undefined;
    if (path !== "/health" && path !== "/livenessprobe") {
      const denied = await access(req, "info");
      if (denied) return denied;
    }
    if (req.method !== "GET") return jsonError(405, `Method ${req.method} not allowed on ${path}`);
    switch (path) {
      case "/info": {
        const mem = process.memoryUsage();
        const body: Record<string, unknown> = {
          app: app(),
          personality,
          runtime: runtime(),
          memory: { rss: mem.rss, heap_used: mem.heapUsed, heap_total: mem.heapTotal },
          origin: platform.origin,
          time: { current: new Date().toISOString(), start: platform.startTime.toISOString() },
          uptime: elapsedText(Date.now() - platform.startTime.getTime()),
        };
        if (options.more) body.more = await options.more();
        return json(body);
      }
      case "/metrics":
        return new Response(prometheusText(platform.metrics()), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      case "/info/lib":
        return json({ app: app(), runtime: runtime(), library: libraries() });
      case "/info/routes": {
        const pub: Record<string, number> = {}, priv: Record<string, number> = {};
        for (const r of platform.routes()) (r.isPrivate ? priv : pub)[r.route] = r.instances;
        const body: Record<string, unknown> = { app: app() };
        const network = platform.mesh?.describe();
        if (network) body.network = network;
        body.routing = { public: pub, private: priv };
        const substitutions = platform.routeSubstitutions();
        if (Object.keys(substitutions).length > 0) body.route_substitution = substitutions;
        return json(body);
      }
      case "/env": {
        const environment: Record<string, string> = {};
        for (const name of c.getList("show.env.variables")) {
          const v = process.env[name];
          if (v !== undefined) environment[name] = v;
        }
        const properties: Record<string, string> = {};
        for (const key of c.getList("show.application.properties")) {
          const v = c.getString(key);
          if (v !== undefined) properties[key] = v;
        }
        return json({ app: app(), env: { environment, properties } });
      }
      case "/health": {
        const deps = dependencies();
        const results = await Promise.all(deps.map(check));
        healthy = results.every((r) => !r.required || r.status_code === 200);
        const body: Record<string, unknown> = { dependency: results };
        if (deps.length === 0) {
          body.message =
            "Did you forget to define mandatory.health.dependencies or optional.health.dependencies";
        }
        Object.assign(body, {
          status: healthy ? "UP" : "DOWN",
          origin: platform.origin,
          name: platform.name,
        });
        return json(body, healthy ? 200 : 400);
      }
      default: // "/livenessprobe"
        return healthy
          ? new Response("OK", { headers: { "content-type": "text/plain" } })
          : new Response("Unhealthy. Please check '/health' endpoint.", {
            status: 400,
            headers: { "content-type": "text/plain" },
          });
    }
  };
}
