/**
 * The monitor's HTTP endpoints, as plain `Request` → `Response` handlers: `/info` (with the
 * guide's `more` section), `/health` (a Kafka loopback) and `/livenessprobe`.
 *
 * @module
 */
import process from "node:process";
import { elapsedText } from "../actuator/format.ts";
import type { PresenceMonitor } from "./monitor.ts";

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The monitor's HTTP handler. */
export function monitorHandler(monitor: PresenceMonitor): (req: Request) => Promise<Response> {
  const p = monitor.platform;
  let healthy = true;
  const app = () => ({
    name: p.name,
    description: p.config.getString("info.app.description", "Presence Monitor"),
    version: p.version,
  });
  return async (req) => {
    const path = new URL(req.url).pathname.replace(/\/+$/, "") || "/";
    if (req.method !== "GET") {
      return json({ type: "error", status: 405, message: `Method ${req.method} not allowed` }, 405);
    }
    switch (path) {
      case "/info": {
        const mem = process.memoryUsage();
        return json({
          app: app(),
          personality: "RESOURCES",
          more: await monitor.info(),
          runtime: {
            ...process.versions.deno ? { deno: process.versions.deno } : {},
            node: process.versions.node,
          },
          memory: { rss: mem.rss, heap_used: mem.heapUsed, heap_total: mem.heapTotal },
          origin: p.origin,
          time: { current: new Date().toISOString(), start: p.startTime.toISOString() },
          uptime: elapsedText(Date.now() - p.startTime.getTime()),
        });
      }
      case "/health": {
        const dep: Record<string, unknown> = {
          route: "cloud.connector.health",
          service: "kafka",
          topics: "on-demand",
          href: monitor.settings.brokers[0],
          required: true,
        };
        try {
          if (!monitor.ready) throw new Error("Presence monitor is not ready");
          dep.message = await monitor.loopback();
          dep.status_code = 200;
        } catch (e) {
          dep.message = (e as Error).message;
          dep.status_code = 503;
        }
        healthy = dep.status_code === 200;
        return json({
          dependency: [dep],
          origin: p.origin,
          name: p.name,
          status: healthy ? "UP" : "DOWN",
        }, healthy ? 200 : 400);
      }
      case "/livenessprobe":
        return healthy
          ? new Response("OK", { headers: { "content-type": "text/plain" } })
          : new Response("Unhealthy. Please check '/health' endpoint.", {
            status: 400,
            headers: { "content-type": "text/plain" },
          });
      default:
        return json({ type: "error", status: 404, message: `Resource not found: ${path}` }, 404);
    }
  };
}
