// The Kafka client a test talks through directly: the library `KAFKA_CLIENT` names (as the
// mesh's own `kafka.client` key reads it from the environment), so that the suite runs on each.
import process from "node:process";
import { kafkaClient } from "../kafka/factory.ts";
import type { KafkaClient } from "../kafka/client.ts";
import { CLIENT_LIBRARIES, DEFAULT_CLIENT } from "../kafka/properties.ts";
import type { ClientLibrary, KafkaClientConfig } from "../kafka/properties.ts";
import { BROKERS } from "./_presence.ts";

/** The client library under test: `KAFKA_CLIENT`, else the default. */
export const CLIENT: ClientLibrary = (() => {
  const named = process.env.KAFKA_CLIENT;
  if (named === undefined || named === "") return DEFAULT_CLIENT;
  if (!(CLIENT_LIBRARIES as readonly string[]).includes(named)) {
    throw new Error(`KAFKA_CLIENT=${named}: not one of ${CLIENT_LIBRARIES.join(", ")}`);
  }
  return named as ClientLibrary;
})();

/**
 * `skip` for a case about the layers above the Kafka client (the same code on every client):
 * `deno task test` runs the broker tests about the client on each client, and such a case on
 * the default one only.
 */
export const ABOVE_THE_CLIENT: string | false = CLIENT === DEFAULT_CLIENT
  ? false
  : "about the layers above the Kafka client: runs on the default client";

/** A client of the library under test, on `brokers` (the test broker by default). */
export function testKafka(
  clientId: string,
  brokers: string[] = BROKERS.split(","),
  settings: Partial<KafkaClientConfig> = {},
): KafkaClient {
  return kafkaClient({
    brokers,
    client: CLIENT,
    securityProtocol: "PLAINTEXT",
    connectionTimeoutMs: 3000,
    requestTimeoutMs: 15000,
    retryBackoffMs: 200,
    silenceMs: 1000,
    acks: 1,
    replicationFactor: 3,
    topics: "on-demand",
    ...settings,
  }, clientId);
}
