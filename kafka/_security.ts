// The TLS options and the OAUTHBEARER token source of a connection, from the client-neutral
// settings, as both Kafka clients take them (each names the SASL mechanisms its own way).
import type { ConnectionOptions } from "node:tls";
import { ConfigError } from "../bus/errors.ts";
import type { OAuthBearerProvider, TlsSettings } from "./properties.ts";

/** Node's TLS options for a connection with `tls`. */
export function tlsOptions(tls: TlsSettings): ConnectionOptions {
  return {
    rejectUnauthorized: true,
    ...(tls.ca ? { ca: [tls.ca] } : {}),
    ...(tls.cert ? { cert: tls.cert, key: tls.key, passphrase: tls.passphrase } : {}),
    ...(tls.minVersion ? { minVersion: tls.minVersion } : {}),
    // An empty ssl.endpoint.identification.algorithm: the chain is checked, the name not.
    ...(tls.verifyHostname ? {} : { checkServerIdentity: () => undefined }),
  };
}

/**
 * The application's OAUTHBEARER token source.
 *
 * @throws {ConfigError} When it gave none.
 */
export function tokenSource(provider: OAuthBearerProvider | undefined): OAuthBearerProvider {
  if (provider !== undefined) return provider;
  throw new ConfigError(
    "sasl.mechanism",
    "OAUTHBEARER",
    "a token source: pass oauthBearer in the options of connectToCloud or PresenceMonitor",
  );
}
