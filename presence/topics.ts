/**
 * The mesh's Kafka topics as a monitor keeps them: `service.monitor` with a partition per closed
 * user group (checked at start), each leased topic prepared before its lease is handed over
 * (and the next one in lease order once it is half leased, or `presence.topics.ahead` of them
 * from the start, so that a join storm does not wait for each topic's creation in turn), and
 * every second a look for topics that went missing or shrank, repaired while `/health` says what
 * is wrong.
 *
 * @module
 */
import { logger } from "../bus/_log.ts";
import type { KafkaClient } from "../kafka/client.ts";
import { missingTopics } from "../kafka/startup.ts";
import { splitVirtualTopic } from "../kafka/records.ts";
import type { MonitorSettings } from "./settings.ts";

const log = logger("presence");

/** The topics of one monitor's mesh. */
export class MeshTopics {
  readonly #kafka: KafkaClient;
  readonly #settings: MonitorSettings;
  /** The virtual topics leased now (their physical topics are needed). */
  readonly #leased: () => Iterable<string>;
  /** What is wrong with the mesh's topics, while something is. */
  #problem: string | undefined;
  #checking = false;
  /** Each app topic's last look or creation (see prepare); `at` 0 while it runs. */
  readonly #preparing = new Map<string, { p: Promise<number>; at: number }>();
  /** The physical topics in lease order. */
  readonly #order: readonly string[];

  /**
   * @param kafka The monitor's client.
   * @param settings Its settings (topic names and partition counts).
   * @param leased The virtual topics leased now.
   * @param all Every virtual topic, in lease order.
   */
  constructor(
    kafka: KafkaClient,
    settings: MonitorSettings,
    leased: () => Iterable<string>,
    all: readonly string[] = [],
  ) {
    this.#kafka = kafka;
    this.#settings = settings;
    this.#leased = leased;
    this.#order = [...new Set(all.map((vt) => splitVirtualTopic(vt)[0]))];
  }

  /** What is wrong with the topics (for `/health`), or undefined. */
  get problem(): string | undefined {
    return this.#problem;
  }

  /**
   * At start: `service.monitor` with a partition per group (created when missing); with
   * `kafka.topics=pre-allocated`, every topic the mesh will use must exist already.
   *
   * @param have The topics Kafka has, with their partitions.
   * @param all Every virtual topic of the table.
   * @throws {Error} Naming what is missing, or "SYSTEM NOT OPERATIONAL" when `service.monitor`
   * has too few partitions.
   */
  async prepareMonitorTopic(have: Map<string, number>, all: readonly string[]): Promise<void> {
    const s = this.#settings;
    const need = s.maxGroups + 1;
    if (s.kafka.topics === "pre-allocated") {
      const apps = new Set(all.map((vt) => splitVirtualTopic(vt)[0]));
      const missing = missingTopics(have, [
        [s.monitorTopic, need],
        ...[...apps].map((t) => [t, s.partitionsPerTopic] as const),
      ]);
      if (missing.length) {
        throw new Error(
          `kafka.topics=pre-allocated, and an administrator must first create: ` +
            missing.join(", "),
        );
      }
    }
    const partitions = await this.#kafka.ensureTopic(s.monitorTopic, need);
    if (partitions < need) {
      throw new Error(
        `SYSTEM NOT OPERATIONAL: ${s.monitorTopic} has ${partitions} partitions; ` +
          `max.closed.user.groups=${s.maxGroups} needs ${need}`,
      );
    }
  }

  /**
   * The partitions of a leased topic's physical topic, created when missing. One look (or
   * creation) per physical topic at a time, and its answer for a second after: a burst of
   * leases in one topic asks Kafka once, not once per lease (a look is a metadata request for
   * every topic; 288 of them made 288 leases take two seconds). A topic that goes missing
   * afterwards is found by {@link MeshTopics.check}. The topics after it in lease order are made
   * too, in the background: `presence.topics.ahead` of them, or with 0 the next one from the
   * lease in its second half on (`partition`); and as many as the `waiting` leases about to be
   * given need beyond this topic's partitions after `partition`. A join storm's topics are then
   * asked for with its first lease, and made in one request: on a broker just started, a second
   * request's topics showed in the metadata 1.3 s after the first's, while the broker made the
   * first ones' logs (bench/presence_bench.ts --burst: p99 1.6-1.7 s in two of four runs).
   */
  prepare(physical: string, partition = 0, waiting = 0): Promise<number> {
    const { topicsAhead, partitionsPerTopic } = this.#settings;
    const half = partition >= partitionsPerTopic / 2;
    const beyond = waiting - (partitionsPerTopic - 1 - partition);
    const ahead = Math.max(
      topicsAhead > 0 ? topicsAhead : half ? 1 : 0,
      beyond > 0 ? Math.ceil(beyond / partitionsPerTopic) : 0,
    );
    const at = this.#order.indexOf(physical);
    for (const t of this.#order.slice(at + 1, at + 1 + ahead)) {
      if (!this.#preparing.has(t)) this.#ensure(t).catch(() => {});
    }
    return this.#ensure(physical);
  }

  /**
   * At start, with `presence.topics.ahead`: the first topics in lease order, made before the
   * monitor takes applications (with `kafka.topics=pre-allocated` they exist already).
   */
  async prepareAhead(): Promise<void> {
    const s = this.#settings;
    if (s.topicsAhead === 0 || s.kafka.topics === "pre-allocated") return;
    const first = this.#order.slice(0, s.topicsAhead);
    await Promise.all(first.map((t) => this.#ensure(t)));
    log.info("{n} of the mesh's topics made ahead (presence.topics.ahead={ahead})", {
      n: first.length,
      ahead: s.topicsAhead,
    });
  }

  #ensure(physical: string): Promise<number> {
    const known = this.#preparing.get(physical);
    if (known !== undefined && (known.at === 0 || Date.now() - known.at < 1000)) return known.p;
    const entry = {
      p: this.#kafka.ensureTopic(physical, this.#settings.partitionsPerTopic),
      at: 0,
    };
    this.#preparing.set(physical, entry);
    entry.p.then(() => (entry.at = Date.now()), () => {
      if (this.#preparing.get(physical) === entry) this.#preparing.delete(physical);
    });
    return entry.p;
  }

  /** The mesh's topics with their partition counts, sorted: `[["multiplex.0001", 32], ...]`. */
  async list(): Promise<[string, number][]> {
    const all = await this.#kafka.topicPartitions();
    const { topicPrefix, monitorTopic } = this.#settings;
    return [...all].filter(([t]) => t === monitorTopic || t.startsWith(`${topicPrefix}.`))
      .sort(([a], [b]) => a < b ? -1 : 1);
  }

  /**
   * Checked every second. A topic that is missing (the broker was re-formatted, or someone
   * deleted it) is created again, and one with fewer partitions than its leases need (created
   * by a broker's automatic creation, say) is grown; meanwhile {@link MeshTopics.problem} says
   * why.
   */
  async check(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      // What is needed and being created is taken before the metadata: a lease granted, or a
      // creation finished, while it is on its way must not look missing.
      const need = [...this.#needed()];
      const creating = this.#inPreparation();
      const have = await this.#kafka.topicPartitions(need.map(([topic]) => topic));
      const still = this.#inPreparation();
      const wrong = need.filter(([topic, n]) =>
        !((have.get(topic) ?? 0) >= n) && !creating.has(topic) && !still.has(topic)
      );
      if (wrong.length === 0) {
        if (this.#problem !== undefined) log.info("The mesh's topics are in place again");
        this.#problem = undefined;
        return;
      }
      const problem = "Kafka topics are not as the mesh needs them: " +
        wrong.map(([topic, n]) =>
          have.has(topic)
            ? `${topic} has ${have.get(topic)} partitions, needs ${n}`
            : `${topic} is missing`
        ).join("; ");
      if (problem !== this.#problem) log.warn("{problem}: repairing", { problem });
      this.#problem = problem;
      // All at once: after a re-formatted broker every topic is missing, and the mesh serves
      // again only once the last one is back.
      await Promise.all(
        wrong.map(([topic, n]) =>
          have.has(topic)
            ? this.#kafka.createPartitions(topic, n)
            : this.#kafka.ensureTopic(topic, n)
        ),
      );
    } catch (e) {
      // Kafka away: the health check says so already.
      log.debug("Cannot check the mesh's topics: {message}", { message: (e as Error).message });
    } finally {
      this.#checking = false;
    }
  }

  // service.monitor, and the physical topic of every lease, with the partitions they need.
  #needed(): Map<string, number> {
    const s = this.#settings;
    const need = new Map([[s.monitorTopic, s.maxGroups + 1]]);
    for (const virtual of this.#leased()) {
      need.set(splitVirtualTopic(virtual)[0], s.partitionsPerTopic);
    }
    return need;
  }

  // The app topics being looked for or created now: not missing, only not there yet.
  #inPreparation(): Set<string> {
    return new Set([...this.#preparing].filter(([, e]) => e.at === 0).map(([t]) => t));
  }
}
