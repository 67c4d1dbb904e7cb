/**
 * A starting monitor's catch-up on partition 0. It reads the partition from a minute back, then
 * asks the running monitors for their state: the TypeScript ones for their table (`download`,
 * answered with a `snapshot` in parts), the Java ones as a Java monitor asks them (`init`,
 * answered with `monitor_alive`, and `download`, answered with their applications).
 *
 * What was written before its own `download` is history: only the Java monitors' messages in it
 * count (the partitions they hold for a minute, and who they are). From its `download` on, it
 * keeps everything, takes the first complete snapshot meant for it, and then what was written
 * after that snapshot. It is in sync once it has a snapshot (or waited long enough for one: it is
 * the first TypeScript monitor) and every Java monitor it knows of has answered (or was waited
 * for long enough: it died).
 *
 * @module
 */
import type { MonitorMessage } from "./control.ts";
import { writerOf } from "./java_monitor.ts";
import type { JavaMessage } from "./java_monitor.ts";
import type { TableSnapshot } from "./lease_table.ts";

/** The longest a starting monitor waits for the Java monitors it heard of to answer. */
export const JAVA_ANSWER_WAIT_MS = 5_000;

/** What one starting monitor read before it was in sync. */
export class Bootstrap {
  readonly #me: string;
  readonly #buffer: [bigint, MonitorMessage][] = [];
  readonly #parts = new Map<string, Map<number, TableSnapshot>>();
  /** Whether its own `download` was read: what came before is history. */
  #started = false;
  /** Java monitors heard that have not answered since its start. */
  readonly #javaToAnswer = new Set<string>();
  /** Java monitors that listed applications and have not sent them since its start. */
  readonly #javaToSend = new Set<string>();
  /** Java monitors that sent their applications since its start (maybe before their list). */
  readonly #javaSent = new Set<string>();

  /** The catch-up of monitor `me`. */
  constructor(me: string) {
    this.#me = me;
  }

  /** Whether its own `download` was read (see {@link Bootstrap.take}). */
  get started(): boolean {
    return this.#started;
  }

  /** Whether every Java monitor it knows of answered since its start. */
  get javaAnswered(): boolean {
    return this.#started && this.#javaToAnswer.size === 0 && this.#javaToSend.size === 0;
  }

  /**
   * Takes a message read at `offset`. Before its own `download` it only notes which Java
   * monitors spoke (the caller reads their history); after it, a complete table for this monitor
   * is returned with the offset it is as of, and anything else is kept for
   * {@link Bootstrap.after}.
   */
  take(msg: MonitorMessage, offset: bigint): { table: TableSnapshot; asOf: bigint } | undefined {
    if (!this.#started) {
      if (msg.type === "download" && msg.monitor === this.#me) this.#started = true;
      else if (msg.type === "java" && !msg.ours) {
        const writer = writerOf(msg.java);
        if (writer !== undefined && writer !== this.#me) this.#javaToAnswer.add(writer);
      }
      return undefined;
    }
    if (msg.type === "java" && !msg.ours) this.#javaAnswer(msg.java);
    if (msg.type !== "snapshot" || msg.for !== this.#me) {
      this.#buffer.push([offset, msg]);
      return undefined;
    }
    // Parts of one monitor's answer, complete once all came.
    const key = `${msg.monitor} ${msg.asOf}`;
    const got = this.#parts.get(key) ?? new Map<number, TableSnapshot>();
    this.#parts.set(key, got.set(msg.part, msg.table));
    if (got.size < msg.parts) return undefined;
    const all = [...got.values()];
    return {
      table: {
        connections: all.flatMap((t) => t.connections),
        departed: all.flatMap((t) => t.departed ?? []),
      },
      asOf: BigInt(msg.asOf),
    };
  }

  // A Java monitor answers `init` with `monitor_alive` (every one, listing the applications it
  // knows), and `download` with its applications (`put` of several) when it knows any.
  #javaAnswer(m: JavaMessage): void {
    if (m.type === "monitor_alive") {
      this.#javaToAnswer.delete(m.origin);
      if (m.apps.length > 0 && !this.#javaSent.has(m.origin)) this.#javaToSend.add(m.origin);
    } else if (m.type === "puts") {
      this.#javaToAnswer.delete(m.origin);
      this.#javaToSend.delete(m.origin);
      this.#javaSent.add(m.origin);
    }
  }

  /** The messages kept that were written after `asOf`, in order. */
  after(asOf: bigint): [bigint, MonitorMessage][] {
    return this.#buffer.filter(([offset]) => offset > asOf);
  }
}
