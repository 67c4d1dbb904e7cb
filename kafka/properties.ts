/**
 * The Kafka client's settings as Mercury users already write them: a `kafka.properties` file
 * (named by `cloud.client.properties`) holding the Java client's keys, read into one
 * client-neutral {@link KafkaClientConfig} that a {@link KafkaClient} implementation maps onto
 * its library.
 *
 * Every key is accounted for: one the client honours is used, one it cannot honour (a JKS
 * trust store, Kerberos) is a {@link ConfigError} naming it, one that has no effect here (the
 * Java serializers) or that nobody knows is a warning naming it.
 *
 * @module
 */
import { readPemFile } from "../bus/config.ts";
import type { AppConfig } from "../bus/config.ts";
import { ConfigError } from "../bus/errors.ts";
import { logger } from "../bus/_log.ts";

const log = logger("kafka");

/** `security.protocol`: how the client talks to the brokers. */
export type SecurityProtocol = "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL";

/** TLS towards the brokers, in PEM. */
export interface TlsSettings {
  /** Trusted CA certificates (PEM); the system's roots when absent. */
  ca?: string;
  /** The client certificate chain (PEM), for brokers that ask for one. */
  cert?: string;
  /** The client's private key (PEM). */
  key?: string;
  /** The passphrase of an encrypted `key` (`ssl.key.password`). */
  passphrase?: string;
  /** False when `ssl.endpoint.identification.algorithm` is empty: host names are not checked. */
  verifyHostname: boolean;
  /** The lowest TLS version allowed (from `ssl.enabled.protocols`). */
  minVersion?: "TLSv1.2" | "TLSv1.3";
}

/**
 * Supplies an OAUTHBEARER token whenever the client (re)authenticates: the application's hook
 * into its identity provider (`sasl.mechanism=OAUTHBEARER`).
 */
export type OAuthBearerProvider = () => Promise<{ value: string }>;

/** SASL authentication (`sasl.mechanism` and the credentials of `sasl.jaas.config`). */
export type SaslSettings =
  | { mechanism: "plain" | "scram-sha-256" | "scram-sha-512"; username: string; password: string }
  | { mechanism: "oauthbearer" };

/** `kafka.client`: the Kafka client library the mesh talks through. */
export type ClientLibrary = "kafkajs" | "platformatic";

/** The values of `kafka.client`. */
export const CLIENT_LIBRARIES: readonly ClientLibrary[] = ["kafkajs", "platformatic"];

/** `kafka.topics`: whether the mesh creates its topics or finds them made by an administrator. */
export type TopicMode = "on-demand" | "pre-allocated";

/** The client library used when `kafka.client` is not set. */
export const DEFAULT_CLIENT: ClientLibrary = "platformatic";

/** Everything a Kafka client of the mesh is configured with. */
export interface KafkaClientConfig {
  /** `bootstrap.servers`. */
  brokers: string[];
  /** `kafka.client`: the client library (see {@link DEFAULT_CLIENT}). */
  client: ClientLibrary;
  /** `security.protocol` (PLAINTEXT). */
  securityProtocol: SecurityProtocol;
  /** TLS, for SSL and SASL_SSL. */
  tls?: TlsSettings;
  /** SASL, for SASL_PLAINTEXT and SASL_SSL. */
  sasl?: SaslSettings;
  /** `client.id`: a prefix of the ids the brokers log (the instance's own by default). */
  clientId?: string;
  /** `socket.connection.setup.timeout.ms` (3000, as kafkajs had it). */
  connectionTimeoutMs: number;
  /** `request.timeout.ms` (15000). */
  requestTimeoutMs: number;
  /** `retry.backoff.ms` (200): the first retry's wait; later ones back off from it. */
  retryBackoffMs: number;
  /**
   * `kafka.silence.ms` (1000; 0 never): how long Kafka may answer nothing at all while a request
   * is overdue before it counts as unreachable (a broker whose packets are dropped).
   */
  silenceMs: number;
  /** `acks` (1, as the Java original): -1 (`all`), 0 or 1. */
  acks: -1 | 0 | 1;
  /** `kafka.replication.factor` (3, at most 3): used as min(it, number of brokers). */
  replicationFactor: number;
  /** `kafka.topics` (on-demand): `pre-allocated` creates nothing and checks what exists. */
  topics: TopicMode;
  /** The properties file read, if any. */
  source?: string;
}

/** The keys of a Java client's file that mean nothing here: named in a warning. */
const NO_EFFECT = new Set([
  "key.serializer",
  "value.serializer",
  "key.deserializer",
  "value.deserializer",
  "max.block.ms",
  "linger.ms",
  "batch.size",
  "buffer.memory",
  "max.poll.records",
  "max.poll.interval.ms",
  "fetch.min.bytes",
  "fetch.max.wait.ms",
  "session.timeout.ms",
  "heartbeat.interval.ms",
  "auto.offset.reset",
  "enable.auto.commit",
  "auto.commit.interval.ms",
  "group.id",
  "retries",
  "delivery.timeout.ms",
  "reconnect.backoff.ms",
  "reconnect.backoff.max.ms",
  "metadata.max.age.ms",
  "connections.max.idle.ms",
  "ssl.truststore.password",
  "ssl.keystore.password",
  "ssl.protocol",
  "ssl.secure.random.implementation",
  "ssl.trustmanager.algorithm",
  "ssl.keymanager.algorithm",
  "dns.lookup",
  "client.dns.lookup",
  "default.api.timeout.ms",
]);

/** Keys whose values decide whether the client can honour them, named in the error. */
const CANNOT = new Map<string, string>([
  ["sasl.login.callback.handler.class", "a Java class; give an OAuthBearerProvider instead"],
  ["sasl.client.callback.handler.class", "a Java class; give an OAuthBearerProvider instead"],
  ["sasl.login.class", "a Java class"],
  [
    "sasl.oauthbearer.token.endpoint.url",
    "the Java client's own token fetch; give an " +
    "OAuthBearerProvider instead",
  ],
  ["sasl.kerberos.service.name", "Kerberos (GSSAPI) is not supported"],
  ["ssl.engine.factory.class", "a Java class"],
  ["ssl.providers", "Java security providers"],
  ["security.providers", "Java security providers"],
  ["interceptor.classes", "Java classes"],
  ["partitioner.class", "a Java class (the mesh names every record's partition)"],
  ["transactional.id", "transactions (the mesh does not use them)"],
]);

/** The keys this module reads: from the file, or from the application's configuration. */
const HONOURED = [
  "bootstrap.servers",
  "security.protocol",
  "sasl.mechanism",
  "sasl.jaas.config",
  "ssl.truststore.location",
  "ssl.truststore.type",
  "ssl.truststore.certificates",
  "ssl.keystore.location",
  "ssl.keystore.type",
  "ssl.keystore.key",
  "ssl.keystore.certificate.chain",
  "ssl.key.password",
  "ssl.endpoint.identification.algorithm",
  "ssl.enabled.protocols",
  "client.id",
  "socket.connection.setup.timeout.ms",
  "request.timeout.ms",
  "retry.backoff.ms",
  "acks",
  "enable.idempotence",
] as const;

/**
 * The user name and password of a `sasl.jaas.config` line, as the Java client reads it:
 * `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`
 * (or `...scram.ScramLoginModule`).
 *
 * @throws {ConfigError} For another login module or a line without both.
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { parseJaasConfig } from "./properties.ts";
 * const jaas = 'org.apache.kafka.common.security.scram.ScramLoginModule required ' +
 *   'username="alice" password="a \\"quoted\\" secret";';
 * assert.deepEqual(parseJaasConfig(jaas), { module: "scram", username: "alice", password: 'a "quoted" secret' });
 * ```
 */
export function parseJaasConfig(
  text: string,
): { module: "plain" | "scram" | "oauthbearer"; username?: string; password?: string } {
  const m = /^\s*([\w.$]+)\s+(required|requisite|sufficient|optional)\b([\s\S]*?);?\s*$/.exec(
    text,
  );
  const bad = (why: string) => new ConfigError("sasl.jaas.config", "(not shown)", why);
  if (!m) throw bad('<LoginModule class> required username="..." password="...";');
  const module = m[1].endsWith(".PlainLoginModule")
    ? "plain"
    : m[1].endsWith(".ScramLoginModule")
    ? "scram"
    : m[1].endsWith(".OAuthBearerLoginModule")
    ? "oauthbearer"
    : undefined;
  if (module === undefined) {
    throw bad(
      "PlainLoginModule, ScramLoginModule or OAuthBearerLoginModule (found " +
        `${m[1].split(".").pop()})`,
    );
  }
  const options = new Map<string, string>();
  for (const o of m[3].matchAll(/([\w.]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]+))/g)) {
    options.set(o[1], o[2] !== undefined ? o[2].replace(/\\(.)/g, "$1") : o[3]);
  }
  if (module === "oauthbearer") return { module };
  const username = options.get("username");
  const password = options.get("password");
  if (!username || password === undefined) {
    throw bad(`username="..." and password="..." in ${m[1].split(".").pop()}`);
  }
  return { module, username, password };
}

function wholeNumber(key: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(key, value, "a whole number of ms");
  return n;
}

/**
 * Reads the Kafka client's settings: `cloud.client.properties` (default `kafka.properties`
 * beside the application's configuration; a list of locations, the first found wins), and
 * the same keys from the application's configuration, with flags, code and environment over
 * the file, and the file over `application.properties` (see {@link AppConfig.getFromFile}).
 *
 * @throws {ConfigError} Naming a key the client cannot honour, or a value it cannot use.
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { AppConfig } from "@minimesh/core";
 * import { kafkaClientConfig } from "./properties.ts";
 * const config = new AppConfig({ dir: "/nonexistent", args: ["-Dbootstrap.servers=k1:9092,k2:9092"], env: {} });
 * const kafka = kafkaClientConfig(config);
 * assert.deepEqual(kafka.brokers, ["k1:9092", "k2:9092"]);
 * assert.equal(kafka.securityProtocol, "PLAINTEXT");
 * ```
 */
export function kafkaClientConfig(config: AppConfig): KafkaClientConfig {
  const file = config.propertiesFile("cloud.client.properties", "kafka.properties");
  const get = (key: string) => config.getFromFile(file, key);
  for (const key of file.values.keys()) {
    if ((HONOURED as readonly string[]).includes(key)) continue;
    const why = CANNOT.get(key);
    if (why !== undefined) throw new ConfigError(key, "(set)", `nothing: ${why}`);
    if (NO_EFFECT.has(key)) {
      log.warn("{file}: {key} has no effect on this client; it is ignored", {
        file: file.path,
        key,
      });
    } else {
      log.warn("{file}: unknown Kafka client key {key}; it is ignored", { file: file.path, key });
    }
  }
  const brokers = (get("bootstrap.servers") ?? "").split(",").map((s) => s.trim())
    .filter(Boolean);
  const protocol = (get("security.protocol") ?? "PLAINTEXT").toUpperCase();
  if (!["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].includes(protocol)) {
    throw new ConfigError(
      "security.protocol",
      protocol,
      "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    );
  }
  const securityProtocol = protocol as SecurityProtocol;
  const out: KafkaClientConfig = {
    brokers: brokers.length ? brokers : ["127.0.0.1:9092"],
    client: config.getChoice("kafka.client", CLIENT_LIBRARIES, DEFAULT_CLIENT),
    securityProtocol,
    clientId: get("client.id") || undefined,
    connectionTimeoutMs: wholeNumber(
      "socket.connection.setup.timeout.ms",
      get("socket.connection.setup.timeout.ms"),
      3000,
    ),
    requestTimeoutMs: wholeNumber("request.timeout.ms", get("request.timeout.ms"), 15000),
    retryBackoffMs: wholeNumber("retry.backoff.ms", get("retry.backoff.ms"), 200),
    silenceMs: Math.max(0, config.getNumber("kafka.silence.ms", 1000)),
    acks: acksOf(get("acks")),
    replicationFactor: replicationFactorOf(config),
    topics: config.getChoice("kafka.topics", ["on-demand", "pre-allocated"], "on-demand"),
    source: file.path,
  };
  if ((get("enable.idempotence") ?? "false").toLowerCase() !== "false") {
    throw new ConfigError(
      "enable.idempotence",
      get("enable.idempotence"),
      "false (the mesh writes each record once, with acks)",
    );
  }
  if (securityProtocol === "SSL" || securityProtocol === "SASL_SSL") out.tls = tlsOf(get);
  else {
    for (const key of HONOURED.filter((k) => k.startsWith("ssl.") && get(k) !== undefined)) {
      throw new ConfigError(key, "(set)", `security.protocol SSL or SASL_SSL (it is ${protocol})`);
    }
  }
  if (securityProtocol.startsWith("SASL_")) out.sasl = saslOf(get);
  else if (get("sasl.mechanism") !== undefined || get("sasl.jaas.config") !== undefined) {
    throw new ConfigError(
      "security.protocol",
      protocol,
      "SASL_PLAINTEXT or SASL_SSL when sasl.mechanism or sasl.jaas.config is set",
    );
  }
  return out;
}

function acksOf(value: string | undefined): -1 | 0 | 1 {
  switch ((value ?? "1").toLowerCase()) {
    case "all":
    case "-1":
      return -1;
    case "0":
      return 0;
    case "1":
      return 1;
  }
  throw new ConfigError("acks", value, "all, -1, 0 or 1");
}

function replicationFactorOf(config: AppConfig): number {
  const n = config.getNumber("kafka.replication.factor", 3);
  if (!Number.isInteger(n) || n < 1) {
    throw new ConfigError(
      "kafka.replication.factor",
      n,
      "a whole number from 1 (at most 3 is used)",
    );
  }
  return Math.min(3, n);
}

function tlsOf(get: (key: string) => string | undefined): TlsSettings {
  const tls: TlsSettings = {
    verifyHostname: (get("ssl.endpoint.identification.algorithm") ?? "https") !== "",
  };
  const trustType = (get("ssl.truststore.type") ?? "PEM").toUpperCase();
  const storeLocation = get("ssl.truststore.location");
  if (trustType !== "PEM") {
    throw new ConfigError(
      "ssl.truststore.type",
      trustType,
      "PEM (convert a JKS or PKCS12 trust store with keytool -exportcert -rfc)",
    );
  }
  const inlineCa = get("ssl.truststore.certificates");
  if (inlineCa) tls.ca = inlineCa.replaceAll("\\n", "\n");
  else if (storeLocation) tls.ca = readPemFile("ssl.truststore.location", storeLocation);
  const keyType = (get("ssl.keystore.type") ?? "PEM").toUpperCase();
  const keystore = get("ssl.keystore.location");
  if (keyType !== "PEM") {
    throw new ConfigError(
      "ssl.keystore.type",
      keyType,
      "PEM (a file with the private key and its certificate chain, or ssl.keystore.key and " +
        "ssl.keystore.certificate.chain)",
    );
  }
  const inlineKey = get("ssl.keystore.key");
  const inlineChain = get("ssl.keystore.certificate.chain");
  if (inlineKey || inlineChain) {
    if (!inlineKey || !inlineChain) {
      throw new ConfigError(
        inlineKey ? "ssl.keystore.certificate.chain" : "ssl.keystore.key",
        "(missing)",
        "both ssl.keystore.key and ssl.keystore.certificate.chain",
      );
    }
    tls.key = inlineKey.replaceAll("\\n", "\n");
    tls.cert = inlineChain.replaceAll("\\n", "\n");
  } else if (keystore) {
    // One PEM file holds both, as Kafka's PEM key store does: tls reads each part from it.
    const pem = readPemFile("ssl.keystore.location", keystore);
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem) || !pem.includes("BEGIN CERTIFICATE")) {
      throw new ConfigError(
        "ssl.keystore.location",
        keystore,
        "a PEM file holding a private key and a certificate",
      );
    }
    tls.key = tls.cert = pem;
  }
  const passphrase = get("ssl.key.password");
  if (passphrase) tls.passphrase = passphrase;
  const enabled = (get("ssl.enabled.protocols") ?? "").split(",").map((s) => s.trim())
    .filter(Boolean);
  if (enabled.length) {
    const known = enabled.filter((p) => p === "TLSv1.2" || p === "TLSv1.3");
    if (known.length === 0) {
      throw new ConfigError("ssl.enabled.protocols", enabled.join(","), "TLSv1.2 and/or TLSv1.3");
    }
    tls.minVersion = known.includes("TLSv1.2") ? "TLSv1.2" : "TLSv1.3";
  }
  return tls;
}

function saslOf(get: (key: string) => string | undefined): SaslSettings {
  const mechanism = (get("sasl.mechanism") ?? "GSSAPI").toUpperCase();
  const jaas = get("sasl.jaas.config");
  if (mechanism === "OAUTHBEARER") return { mechanism: "oauthbearer" };
  if (!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].includes(mechanism)) {
    throw new ConfigError(
      "sasl.mechanism",
      mechanism,
      "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (the Java default GSSAPI, " +
        "Kerberos, is not supported)",
    );
  }
  if (jaas === undefined) {
    throw new ConfigError("sasl.jaas.config", "(missing)", `the credentials for ${mechanism}`);
  }
  const parsed = parseJaasConfig(jaas);
  const expected = mechanism === "PLAIN" ? "plain" : "scram";
  if (parsed.module !== expected) {
    throw new ConfigError(
      "sasl.jaas.config",
      "(not shown)",
      `a ${expected === "plain" ? "PlainLoginModule" : "ScramLoginModule"} line for ` +
        `sasl.mechanism=${mechanism}`,
    );
  }
  return {
    mechanism: mechanism.toLowerCase() as "plain" | "scram-sha-256" | "scram-sha-512",
    username: parsed.username!,
    password: parsed.password!,
  };
}

/** A one-line description for the start-up log: never a secret. */
export function describeKafka(c: KafkaClientConfig): string {
  const parts = [c.brokers.join(","), c.securityProtocol];
  if (c.sasl) {
    parts.push(
      c.sasl.mechanism === "oauthbearer"
        ? "OAUTHBEARER"
        : `${c.sasl.mechanism.toUpperCase()} as ${c.sasl.username}`,
    );
  }
  if (c.tls) parts.push(c.tls.ca ? "own CA" : "system CAs");
  if (c.source) parts.push(`from ${c.source}`);
  parts.push(`client ${c.client}`);
  return parts.join(", ");
}
