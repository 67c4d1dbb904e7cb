/**
 * A starting monitor's catch-up on partition 0: it asks the running monitors for their table
 * (`download`), keeps what it reads meanwhile, and takes the first complete `snapshot` meant
 * for it (every running monitor answers, each in parts), then what was written after it.
 *
 * @module
 */
import type { MonitorMessage } from "./control.ts";
import type { TableSnapshot } from "./lease_table.ts";

/** What one starting monitor read before it was in sync. */
export class Bootstrap {
  readonly #me: string;
  readonly #buffer: [bigint, MonitorMessage][] = [];
  readonly #parts = new Map<string, Map<number, TableSnapshot>>();

  /** The catch-up of monitor `me`. */
  constructor(me: string) {
    this.#me = me;
  }

  /**
   * Takes a message read at `offset`: a complete table for this monitor is returned with the
   * offset it is as of; anything else is kept for {@link Bootstrap.after}.
   */
  take(msg: MonitorMessage, offset: bigint): { table: TableSnapshot; asOf: bigint } | undefined {
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

  /** The messages kept that were written after `asOf`, in order. */
  after(asOf: bigint): [bigint, MonitorMessage][] {
    return this.#buffer.filter(([offset]) => offset > asOf);
  }
}
