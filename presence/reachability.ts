/**
 * Apps that cannot reach Kafka while their monitor can (a host whose links to the brokers are
 * cut, a one-way partition): their reports say so (`kafka: false`), and the monitor tells their
 * closed user group with a `drain` on their behalf, so that peers send new requests to the other
 * instances of their routes and retry elsewhere the requests that asked for it; once an app
 * reaches Kafka again, an `undrain` takes it back. When the monitor cannot reach Kafka either,
 * the cluster is away for everyone and nobody is drained (nor could be).
 *
 * @module
 */
import { logger } from "../bus/_log.ts";
import type { KafkaClient } from "../kafka/client.ts";
import { eventRecord } from "../kafka/records.ts";
import { registryMessage } from "../protocol/registry.ts";

const log = logger("presence");

/** Who an app is, as far as a drain on its behalf needs. */
export interface Reporter {
  origin: string;
  group: number;
  name?: string;
}

/** The apps this monitor drained because they could not reach Kafka. */
export class KafkaReachability {
  readonly #kafka: KafkaClient;
  readonly #monitorTopic: string;
  /** Origin -> its group, for the apps drained now. */
  readonly #drained = new Map<string, number>();

  /** Writes through `kafka` to the groups' partitions of `monitorTopic`. */
  constructor(kafka: KafkaClient, monitorTopic: string) {
    this.#kafka = kafka;
    this.#monitorTopic = monitorTopic;
  }

  /** An app's report said whether it reaches Kafka (`undefined`: it did not say). */
  report(app: Reporter, reaches: boolean | undefined): void {
    if (reaches === undefined) return;
    const drained = this.#drained.has(app.origin);
    if (reaches === !drained) return;
    // Kafka away for this monitor too: the cluster is down, not the app's links.
    if (!reaches && !this.#kafka.available) return;
    if (reaches) this.#drained.delete(app.origin);
    else this.#drained.set(app.origin, app.group);
    const type = reaches ? "undrain" : "drain";
    log.info(
      reaches
        ? "{origin} ({name}) reaches Kafka again: its peers take it back"
        : "{origin} ({name}) cannot reach Kafka: its peers send new requests elsewhere",
      { origin: app.origin, name: app.name ?? "" },
    );
    const e = registryMessage(app.group, type, { origin: app.origin, by: "monitor" });
    this.#kafka.send([eventRecord(this.#monitorTopic, app.group, `monitor-${app.group}`, e)])
      .catch((err) => {
        // Tried again with the app's next report.
        if (reaches) this.#drained.set(app.origin, app.group);
        else this.#drained.delete(app.origin);
        log.warn("Cannot write the {type} of {origin}: {message}", {
          type,
          origin: app.origin,
          message: (err as Error).message,
        });
      });
  }

  /** The app left: nothing to take back. */
  forget(origin: string): void {
    this.#drained.delete(origin);
  }
}
