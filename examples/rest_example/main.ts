/**
 * The guide's rest-example: HTTP on port 8083. `GET /api/pojo/mesh/{id}` calls `hello.pojo`
 * through the mesh and returns the guide's JSON, or a JSON error with the right status when
 * no instance serves it (404), the request times out (408) or the id is bad (400).
 *
 * ```sh
 * deno run -A examples/rest_example/main.ts \
 *   -Dcloud.connector=kafka -Dmandatory.health.dependencies=cloud.connector.health
 * ```
 *
 * @module
 */
import {
  MinimeshError,
  Platform,
  PostOffice,
  RequestTimeoutError,
  RouteNotFoundError,
  setupLogging,
} from "../../mod.ts";
import { connectToCloud } from "../../connector/mod.ts";
import { onShutdown } from "../_shutdown.ts";
import { incomingTrace, jsonError, startHttp } from "../../actuator/mod.ts";

const platform = new Platform({ dir: import.meta.dirname });
await setupLogging(platform.config.getString("log.level", "info"), "app", {
  format: platform.config.getChoice("log.format", ["text", "json"] as const, "text"),
});
const timeout = platform.config.getNumber("pojo.timeout", 5000);

async function pojo(id: string, trace: Record<string, string>): Promise<Response> {
  const po = new PostOffice({ my_route: "rest.example", ...trace }, platform);
  try {
    const reply = await po.request({ to: "hello.pojo", headers: { id } }, { timeout });
    if (reply.isError) return jsonError(reply.status, reply.error!);
    return new Response(JSON.stringify(reply.body, null, 2), {
      headers: { "content-type": "application/json" },
    });
  } catch (e) {
    if (e instanceof RouteNotFoundError) {
      return jsonError(404, "hello.pojo is not available: no instance in the mesh serves it");
    }
    if (e instanceof RequestTimeoutError) {
      return jsonError(408, `hello.pojo did not answer within ${timeout} ms`);
    }
    if (e instanceof MinimeshError) return jsonError(e.status, e.message);
    throw e; // startHttp logs it and answers 500 without the detail
  }
}

connectToCloud(platform);
const POJO_PATH = /^\/api\/pojo\/mesh\/([^/]+)$/;
await startHttp(platform, {
  // Its requests in /metrics and in spans, one label for every id.
  pathLabel: (req) => POJO_PATH.test(new URL(req.url).pathname) ? "/api/pojo/mesh/{id}" : undefined,
  routes: (req) => {
    const m = POJO_PATH.exec(new URL(req.url).pathname);
    if (m === null) return undefined;
    if (req.method !== "GET") return jsonError(405, `Method ${req.method} not allowed`);
    let id: string;
    try {
      id = decodeURIComponent(m[1]);
    } catch {
      return jsonError(400, "Invalid id: malformed percent-encoding");
    }
    // The trace an HTTP client started (traceparent or X-Trace-Id) goes on, or a new one.
    return pojo(id, incomingTrace(req, `GET /api/pojo/mesh/${id}`));
  },
});

// Stop accepting HTTP, drain the mesh, finish the work in progress, leave (Platform.stop).
onShutdown(() => platform.stop());
