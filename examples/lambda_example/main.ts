/**
 * The guide's lambda-example: public functions `hello.world` (echoes headers and body with its
 * instance and origin) and `hello.pojo` (10 instances; returns the guide's PoJo for an id).
 * Actuator endpoints on port 8085.
 *
 * ```sh
 * deno run -A examples/lambda_example/main.ts \
 *   -Dcloud.connector=kafka -Dmandatory.health.dependencies=cloud.connector.health
 * ```
 *
 * Without `-Dcloud.connector=kafka` it runs on its own.
 *
 * @module
 */
import { AppError, EventEnvelope, Platform, setupLogging } from "../../mod.ts";
import { connectToCloud } from "../../connector/mod.ts";
import { onShutdown } from "../_shutdown.ts";
import { startHttp } from "../../actuator/mod.ts";

const platform = new Platform({ dir: import.meta.dirname });
await setupLogging(platform.config.getString("log.level", "info"), "app", {
  format: platform.config.getChoice("log.format", ["text", "json"] as const, "text"),
});

platform.register("hello.world", (headers, body, instance) => ({
  headers,
  body,
  instance,
  origin: platform.origin,
}), 10);

/** The Java class of the guide's PoJo, which Java callers map the reply's body to. */
const SAMPLE_POJO = "org.platformlambda.models.SamplePoJo";
let seq = 0;
platform.register("hello.pojo", (headers, _body, instance) => {
  const id = Number(headers.id);
  if (!Number.isInteger(id) || id < 1) {
    throw new AppError(400, `Invalid id "${headers.id ?? ""}": expected a positive integer`);
  }
  // The reply names its type as a Java function's does: the guide's Java REST example accepts a
  // reply only when its type is the class it maps the body to.
  return new EventEnvelope({
    type: SAMPLE_POJO,
    body: {
      id,
      name: "Simple PoJo class",
      address: "100 World Blvd, Planet Earth",
      date: new Date().toISOString(),
      instance,
      seq: ++seq,
      origin: platform.origin,
    },
  });
}, 10);

connectToCloud(platform);
await startHttp(platform);

// Stop accepting HTTP, drain the mesh, finish the work in progress, leave (Platform.stop).
onShutdown(() => platform.stop());
