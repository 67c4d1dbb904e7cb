// Creating and growing the mesh's topics, as both clients do it: what `kafka.topics` allows, the
// replication factor, a race with another process doing the same, and a cluster just started.
import { logger } from "../bus/_log.ts";
import type { TopicMode } from "./properties.ts";

const log = logger("kafka");
/** The looks at the metadata (25 ms apart) for a topic whose request was refused. */
const REFUSED_LOOKS = 20;

/** What a client does for {@link TopicCreations} and {@link growTopic}. */
export interface TopicAdmin {
  /** `kafka.topics`. */
  readonly mode: TopicMode;
  /** `kafka.replication.factor`. */
  readonly replicationFactor: number;
  /** Topic name → partition count (and, as a side effect, the broker count known). */
  partitions(): Promise<Map<string, number>>;
  /** The number of brokers, known once `partitions` answered. */
  brokers(): number;
  /** Creates the topics, each with `partitions`. */
  create(topics: string[], partitions: number, replicationFactor: number): Promise<void>;
  /** Grows the topic to `count` partitions. */
  grow(topic: string, count: number): Promise<void>;
  /** Whether the error says the topic exists already. */
  exists(e: unknown): boolean;
  /** Whether creating may succeed when tried again (a cluster just started). */
  retriable(e: unknown): boolean;
}

/** See {@link KafkaClient.createPartitions}. */
export async function growTopic(admin: TopicAdmin, topic: string, count: number): Promise<void> {
  if (admin.mode === "pre-allocated") {
    throw new Error(
      `Topic ${topic} needs ${count} partitions (kafka.topics=pre-allocated: the mesh ` +
        `does not change topics; an administrator must add them)`,
    );
  }
  try {
    await admin.grow(topic, count);
    log.warn("Topic {topic} now has {count} partitions", { topic, count });
  } catch (e) {
    // Another process may have grown it at the same moment.
    const now = (await admin.partitions()).get(topic) ?? 0;
    if (now < count) throw e;
  }
}

/**
 * See {@link KafkaClient.ensureTopic}: creates missing topics with replication factor
 * min(`kafka.replication.factor`, number of brokers); with `kafka.topics=pre-allocated` a missing
 * topic is an error. The topics asked for while a creation (or its look at the metadata) is on
 * its way go together in the next one: a monitor whose join storm needs nine new topics asked for
 * them one request at a time, each waiting for the cluster's controller (30-40 ms) and delaying
 * the metadata requests that look for the topics made before (288 joins on a fresh broker: p99
 * 1.0-1.6 s).
 *
 * @example
 * ```ts
 * import { TopicCreations } from "./_topics.ts";
 * import type { TopicAdmin } from "./_topics.ts";
 * const have = new Map<string, number>();
 * const requests: string[][] = [];
 * const admin: TopicAdmin = {
 *   mode: "on-demand",
 *   replicationFactor: 1,
 *   partitions: () => Promise.resolve(new Map(have)),
 *   brokers: () => 1,
 *   create: (topics, partitions) => {
 *     requests.push(topics);
 *     for (const t of topics) have.set(t, partitions);
 *     return Promise.resolve();
 *   },
 *   grow: () => Promise.resolve(),
 *   exists: () => false,
 *   retriable: () => false,
 * };
 * const topics = new TopicCreations(admin);
 * await Promise.all(["a", "b", "c"].map((t) => topics.ensure(t, 2)));
 * console.assert(requests.length === 1 && requests[0].length === 3);
 * ```
 */
export class TopicCreations {
  readonly #admin: TopicAdmin;
  /** Topic → its partitions and who waits for it, until the next creation takes them. */
  #queued = new Map<string, { partitions: number; waiters: PromiseWithResolvers<number>[] }>();
  #running = false;

  /** @param admin What the client does. */
  constructor(admin: TopicAdmin) {
    this.#admin = admin;
  }

  /** Creates `topic` with `partitions` when missing; resolves with its partition count. */
  ensure(topic: string, partitions: number): Promise<number> {
    const waiter = Promise.withResolvers<number>();
    const queued = this.#queued.get(topic);
    if (queued !== undefined) queued.waiters.push(waiter);
    else this.#queued.set(topic, { partitions, waiters: [waiter] });
    if (!this.#running) void this.#run();
    return waiter.promise;
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queued.size > 0) {
        // The look first, then the batch: the topics asked for during the look go with it (a
        // topic made meanwhile by another process is then refused as existing, which is fine).
        const look = this.#admin.partitions();
        await look.then(() => {}, () => {}); // (its failure is the batch's, below)
        const batch = this.#queued;
        this.#queued = new Map();
        const wanted = new Map([...batch].map(([t, q]) => [t, q.partitions]));
        const settled = await this.#ensureAll(wanted, look)
          .catch((e: unknown) => new Map([...batch.keys()].map((t) => [t, e as Error])));
        for (const [topic, q] of batch) {
          const r = settled.get(topic);
          for (const w of q.waiters) typeof r === "number" ? w.resolve(r) : w.reject(r);
        }
      }
    } finally {
      this.#running = false;
    }
  }

  // Each topic's partition count, or why it cannot be had.
  async #ensureAll(
    wanted: Map<string, number>,
    look: Promise<Map<string, number>>,
  ): Promise<Map<string, number | Error>> {
    const admin = this.#admin;
    const out = new Map<string, number | Error>();
    let have = await look;
    const missing = new Map<string, number>();
    for (const [topic, partitions] of wanted) {
      const n = have.get(topic);
      if (n !== undefined) out.set(topic, n);
      else if (admin.mode === "pre-allocated") {
        out.set(
          topic,
          new Error(
            `Topic ${topic} does not exist (kafka.topics=pre-allocated: an administrator ` +
              `creates it with ${partitions} partitions)`,
          ),
        );
      } else missing.set(topic, partitions);
    }
    if (missing.size === 0) return out;
    // One request per partition count (one, in a mesh).
    const byCount = new Map<number, string[]>();
    for (const [topic, n] of missing) {
      const same = byCount.get(n);
      if (same) same.push(topic);
      else byCount.set(n, [topic]);
    }
    // A refused request may have made some of its topics (Kafka answers per topic): the
    // metadata tells which, and the others fail with the refusal.
    const refused = new Map<string, Error>();
    await Promise.all([...byCount].map(([n, topics]) =>
      this.#create(topics, n).catch((e) => {
        for (const t of topics) refused.set(t, e as Error);
      })
    ));
    // Shown in the metadata: a topic just created may not be yet (a broker shows it once it made
    // its partitions, tens of milliseconds after the controller's answer). Looked for often at
    // first, since leases wait for it, then every 100 ms, for 5 s in all; a refused one, for the
    // first half second.
    for (let i = 0; i < 60; i++) {
      const waiting = [...missing.keys()].filter((t) => !out.has(t));
      if (waiting.length === 0) return out;
      if (i > 0) await new Promise((r) => setTimeout(r, i <= 20 ? 25 : 100));
      have = await admin.partitions();
      for (const t of waiting) {
        const n = have.get(t);
        if (n !== undefined) out.set(t, n);
        else if (refused.has(t) && i >= REFUSED_LOOKS) out.set(t, refused.get(t)!);
      }
    }
    for (const t of missing.keys()) {
      if (!out.has(t)) {
        out.set(t, new Error(`Topic ${t} was created but does not show in the metadata`));
      }
    }
    return out;
  }

  async #create(topics: string[], partitions: number): Promise<void> {
    const admin = this.#admin;
    const brokers = admin.brokers();
    const wanted = admin.replicationFactor;
    const rf = Math.max(1, Math.min(wanted, brokers));
    for (let attempt = 1;; attempt++) {
      try {
        await admin.create(topics, partitions, rf);
        log.info(
          "Created topic(s) {topics} with {partitions} partitions, replication factor {rf} " +
            "(kafka.replication.factor={wanted}, {brokers} broker(s))",
          { topics: topics.join(", "), partitions, rf, wanted, brokers },
        );
        return;
      } catch (e) {
        // Another process may have created one at the same moment: that is fine (the others of
        // the request were made, and the metadata shows them).
        if (admin.exists(e)) return;
        // In a cluster just started, a broker that has not heard of the new topic yet may refuse
        // (retriable): the topic may well exist. CI saw a monitor exit at start on it.
        if (!admin.retriable(e) || attempt >= 10) throw e;
        await new Promise((r) => setTimeout(r, 200 * attempt));
        const have = await admin.partitions();
        topics = topics.filter((t) => !have.has(t));
        if (topics.length === 0) return;
      }
    }
  }
}
