/**
 * Chooses the Kafka client library from the mesh's settings (`kafka.client`).
 *
 * @module
 */
import type { KafkaClient } from "./client.ts";
import { KafkaLink } from "./kafkajs/link.ts";
import { PlatformaticLink } from "./platformatic/link.ts";
import type { KafkaClientConfig, OAuthBearerProvider } from "./properties.ts";

/**
 * Creates the {@link KafkaClient} the settings name (`kafka.client`: `kafkajs` or
 * `platformatic`), with `clientId` when the settings name none.
 *
 * @throws {ConfigError} For OAUTHBEARER without an `oauthBearer` token source.
 */
export function kafkaClient(
  config: KafkaClientConfig,
  clientId: string,
  oauthBearer?: OAuthBearerProvider,
): KafkaClient {
  const options = { ...config, clientId: config.clientId ?? clientId, oauthBearer };
  return config.client === "platformatic" ? new PlatformaticLink(options) : new KafkaLink(options);
}
