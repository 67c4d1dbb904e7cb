/**
 * The connector's health check, served as the private route `cloud.connector.health` (list it in
 * `mandatory.health.dependencies`): `type=info` describes the Kafka connection, `type=health`
 * writes a loopback record to this instance's own partition and waits for it.
 *
 * @module
 */
import { AppError } from "../bus/errors.ts";
import type { LambdaFunction } from "../bus/types.ts";
import type { KafkaClient } from "../kafka/client.ts";
import { splitVirtualTopic } from "../kafka/records.ts";

/** The route of the connector's health check. */
export const HEALTH_ROUTE = "cloud.connector.health";

/** What the health function reports besides the loopback. */
export interface HealthOptions {
  /** Why Kafka does not accept this instance, while it does not. */
  problem?: () => string | undefined;
  /** `kafka.topics`, shown by `type=info` as the Java original's `topics`. */
  topics?: string;
}

/** The health function; `topic()` is the leased virtual topic while in the mesh. */
export function healthCheck(
  kafka: KafkaClient,
  topic: () => string | undefined,
  options: HealthOptions = {},
): LambdaFunction<unknown, unknown> {
  return async (headers) => {
    if (headers.type === "info") {
      return { service: "kafka", href: kafka.brokers[0], topics: options.topics ?? "on-demand" };
    }
    if (headers.type !== "health") throw new AppError(400, "Usage: type=info or type=health");
    const problem = options.problem?.();
    if (problem !== undefined) throw new AppError(503, problem);
    const vt = topic();
    if (vt === undefined) throw new AppError(503, "Not connected to a presence monitor");
    if (!kafka.available) throw new AppError(503, "Kafka is unreachable");
    try {
      return `Loopback test took ${await kafka.loopback(...splitVirtualTopic(vt))} ms`;
    } catch (e) {
      throw new AppError(408, (e as Error).message);
    }
  };
}
