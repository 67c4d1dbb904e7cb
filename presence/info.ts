/**
 * What a monitor shows in `/info` (the `more` section, shaped as in the guide): the mesh's
 * topics, the leases, the connections and the known monitors.
 *
 * @module
 */
import { elapsedText, isoSeconds } from "../actuator/format.ts";
import type { LeaseTable } from "./lease_table.ts";

/** The `more` section of a monitor's `/info`. */
export function monitorInfo(
  table: LeaseTable,
  topics: [string, number][],
  monitors: Map<string, number>,
  now: number = Date.now(),
): Record<string, unknown> {
  const connections = table.connections()
    .sort((a, b) =>
      `${a.name}-${a.version}|${a.origin}` < `${b.name}-${b.version}|${b.origin}` ? -1 : 1
    )
    .map((c) => ({
      elapsed: elapsedText(now - Date.parse(c.created)),
      created: c.created,
      origin: c.origin,
      name: c.name,
      topic: c.topic ?? null,
      monitor: c.monitor,
      type: c.type,
      updated: c.updated,
      version: c.version,
      seq: c.seq,
      group: c.group,
      ...(c.instance ? { instance: c.instance } : {}),
    }));
  const leases = table.leases();
  return {
    total: {
      topics: topics.length,
      virtual_topics: leases.length,
      connections: connections.length,
    },
    topics: topics.map(([t, n]) => `${t} (${n})`),
    virtual_topics: leases.map(([vt, origin]) => {
      const c = table.connection(origin);
      return `${vt} -> ${origin}, ${c?.name} v${c?.version}`;
    }),
    connections,
    monitors: [...monitors].sort(([a], [b]) => a < b ? -1 : 1)
      .map(([origin, lastSeen]) => `${origin} - ${isoSeconds(lastSeen)}`),
  };
}
