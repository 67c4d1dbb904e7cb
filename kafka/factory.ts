/**
 * Chooses the Kafka client library from the mesh's settings (`kafka.client`).
 *
 * @module
 */
import type { KafkaClient } from "./client.ts";
import { DeferredClient } from "./_deferred.ts";
import { tokenSource } from "./_security.ts";
import type { KafkaClientConfig, OAuthBearerProvider } from "./properties.ts";

/**
 * Creates the {@link KafkaClient} the settings name (`kafka.client`: `kafkajs` or
 * `platformatic`), with `clientId` when the settings name none. The client library is loaded
 * when the client is first used: only the one in use needs to be installed (npm), and a missing
 * one is named then.
 *
 * @throws {ConfigError} For OAUTHBEARER without an `oauthBearer` token source.
 */
export function kafkaClient(
  config: KafkaClientConfig,
  clientId: string,
  oauthBearer?: OAuthBearerProvider,
): KafkaClient {
  const options = { ...config, clientId: config.clientId ?? clientId, oauthBearer };
  if (config.sasl?.mechanism === "oauthbearer") tokenSource(oauthBearer); // says so now
  const library = config.client === "platformatic" ? "@platformatic/kafka" : "kafkajs";
  return new DeferredClient(
    config.brokers,
    () =>
      (config.client === "platformatic"
        ? import("./platformatic/link.ts").then((m) => new m.PlatformaticLink(options))
        : import("./kafkajs/link.ts").then((m) => new m.KafkaLink(options)))
        .catch((e) => {
          if (!/Cannot find (module|package)|ERR_MODULE_NOT_FOUND/.test(String(e))) throw e;
          throw new Error(
            `kafka.client=${config.client} needs the ${library} package: npm install ${library}`,
            { cause: e },
          );
        }),
  );
}
