/**
 * Before joining the mesh, an application makes sure Kafka accepts it: the brokers answer, its
 * credentials and TLS settings are accepted, and (with `kafka.topics=pre-allocated`) the
 * topics it needs exist. A failure is explained in words that name the setting to check, and
 * tried again with a bounded back-off (1 s doubling to 30 s), never in a storm.
 *
 * @module
 */
import type { KafkaClient } from "./client.ts";
import type { KafkaClientConfig } from "./properties.ts";

/** The longest wait between two checks. */
export const MAX_BACKOFF_MS = 30_000;

/** Kinds of start-up problems, each with the short text `/health` shows. */
export const PROBLEM_SUMMARY = {
  credentials: "Kafka refused this instance's credentials",
  tls: "TLS to Kafka failed",
  unreachable: "Kafka is unreachable",
  topics: "Topics the mesh needs are missing",
  other: "Kafka cannot be used",
} as const;

/** A start-up problem: its kind, and the sentence for the log. */
export interface KafkaProblem {
  /** What kind of problem (see {@link PROBLEM_SUMMARY}). */
  kind: keyof typeof PROBLEM_SUMMARY;
  /** The explanation for the log, naming the setting to check. */
  text: string;
}

/**
 * What went wrong between the client and the brokers: its kind, and a sentence that names the
 * setting to look at (never a secret).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { kafkaProblem } from "./startup.ts";
 * import type { KafkaClientConfig } from "./properties.ts";
 * const c: Pick<KafkaClientConfig, "brokers" | "securityProtocol" | "sasl"> = {
 *   brokers: ["k:9093"],
 *   securityProtocol: "SASL_SSL",
 *   sasl: { mechanism: "scram-sha-512", username: "alice", password: "x" },
 * };
 * const p = kafkaProblem(new Error("SASL SCRAM SHA512 authentication failed: bad"), c);
 * assert.equal(p.kind, "credentials");
 * assert.match(p.text, /refused the credentials of alice/);
 * assert.doesNotMatch(p.text, /x"/);
 * ```
 */
export function kafkaProblem(
  e: unknown,
  c: Pick<KafkaClientConfig, "brokers" | "securityProtocol" | "sasl" | "source">,
): KafkaProblem {
  const message = e instanceof Error ? e.message : String(e);
  const from = c.source ? ` (${c.source})` : "";
  const brokers = c.brokers.join(",");
  if (/SASL|authenticat/i.test(message)) {
    const who = c.sasl && "username" in c.sasl
      ? `${c.sasl.username} (${c.sasl.mechanism.toUpperCase()})`
      : "this client";
    return {
      kind: "credentials",
      text: `Kafka refused the credentials of ${who}: ${message}. Check sasl.jaas.config and ` +
        `sasl.mechanism${from}`,
    };
  }
  if (/certificate|self.signed|SSL|TLS|handshake|altnames|UNABLE_TO|unknown ca/i.test(message)) {
    return {
      kind: "tls",
      text: `TLS to ${brokers} failed: ${message}. Check security.protocol, ` +
        `ssl.truststore.location and ssl.endpoint.identification.algorithm${from}`,
    };
  }
  if (/ECONNREFUSED|Connection (error|timeout)|connect|ENOTFOUND|closed/i.test(message)) {
    return {
      kind: "unreachable",
      text: `No broker answers at ${brokers} (${c.securityProtocol}): ${message}. ` +
        `Check bootstrap.servers${from}`,
    };
  }
  return { kind: "other", text: `Kafka at ${brokers} cannot be used: ${message}` };
}

/** The sentence of {@link kafkaProblem}: what went wrong and which setting to check. */
export function explainKafkaError(
  e: unknown,
  c: Pick<KafkaClientConfig, "brokers" | "securityProtocol" | "sasl" | "source">,
): string {
  return kafkaProblem(e, c).text;
}

/**
 * The topics of `need` (name → partitions) that `have` lacks or has too few partitions of, as
 * lines such as `multiplex.0003 (missing; needs 32 partitions)`.
 */
export function missingTopics(
  have: ReadonlyMap<string, number>,
  need: Iterable<readonly [string, number]>,
): string[] {
  const out: string[] = [];
  for (const [topic, partitions] of need) {
    const n = have.get(topic);
    if (n === undefined) out.push(`${topic} (missing; needs ${partitions} partitions)`);
    else if (n < partitions) out.push(`${topic} (has ${n} partitions; needs ${partitions})`);
  }
  return out;
}

/** Options of {@link untilKafkaAccepts}. */
export interface UntilKafkaAcceptsOptions {
  /** The topics that must exist (only with `kafka.topics=pre-allocated`). */
  need?: Iterable<readonly [string, number]>;
  /** Called with each failure and the wait before the next try. */
  onProblem: (problem: KafkaProblem, retryInMs: number) => void;
  /** Ends the waiting (the connector stops). */
  signal: AbortSignal;
}

/**
 * Resolves once Kafka answers a metadata request (which needs the connection, TLS and SASL
 * to work) and has the topics of `need`; retries after 1, 2, 4 ... 30 s. Rejects when
 * `signal` aborts.
 */
export async function untilKafkaAccepts(
  kafka: KafkaClient,
  config: Pick<KafkaClientConfig, "brokers" | "securityProtocol" | "sasl" | "source">,
  options: UntilKafkaAcceptsOptions,
): Promise<void> {
  const need = [...(options.need ?? [])];
  for (let wait = 1000;; wait = Math.min(MAX_BACKOFF_MS, wait * 2)) {
    options.signal.throwIfAborted();
    let problem: KafkaProblem;
    try {
      const missing = missingTopics(await kafka.topicPartitions(), need);
      if (missing.length === 0) return;
      problem = {
        kind: "topics",
        text: `kafka.topics=pre-allocated and these topics are not as needed: ` +
          `${missing.join(", ")}`,
      };
    } catch (e) {
      problem = kafkaProblem(e, config);
    }
    options.signal.throwIfAborted();
    options.onProblem(problem, wait);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, wait);
      options.signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(timer);
        options.signal.removeEventListener("abort", done);
        resolve();
      }
    });
  }
}
