/**
 * What a monitor shows in `/info` (the `more` section, shaped as in the guide): the mesh's
 * topics, the leases, the connections and the known monitors; and its figures for `/metrics`.
 *
 * @module
 */
import { elapsedText, isoSeconds } from "../protocol/format.ts";
import { countersBy, kafkaUpFamily } from "../bus/metrics.ts";
import type { MetricFamily } from "../bus/metrics.ts";
import { UNAUTHORIZED } from "../protocol/credentials.ts";
import type { LeaseTable } from "./lease_table.ts";
import type { Sessions } from "./sessions.ts";

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
    dashboard: "/",
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

/** The monitor's metric families: sessions, connections and leases, monitors, refusals. */
export function monitorMetrics(
  table: LeaseTable,
  sessions: Sessions,
  monitors: number,
  unauthorized: number,
  more: { kafkaUp: boolean; joins: number; leaves: number },
): MetricFamily[] {
  const gauge = (name: string, help: string, value: number): MetricFamily => ({
    name,
    help,
    type: "gauge",
    samples: [{ value }],
  });
  const closed = new Map(sessions.closed);
  if (unauthorized) closed.set(UNAUTHORIZED, unauthorized);
  return [
    gauge(
      "minimesh_monitor_sessions",
      "Applications connected to this monitor.",
      sessions.joined().length,
    ),
    gauge(
      "minimesh_monitor_connections",
      "Applications in the mesh (all monitors).",
      table.connections().length,
    ),
    gauge("minimesh_monitor_leases", "Virtual topics leased.", table.leases().length),
    gauge("minimesh_monitor_virtual_topics", "Virtual topics in all.", table.all.length),
    gauge("minimesh_monitor_monitors", "Monitors known, this one included.", monitors),
    {
      name: "minimesh_monitor_refused_total",
      help: "Websockets this monitor closed or refused, by close code (docs/presence.md).",
      type: "counter",
      samples: [...closed].sort(([a], [b]) => a - b)
        .map(([code, value]) => ({ labels: { code: String(code) }, value })),
    },
    kafkaUpFamily(more.kafkaUp),
    countersBy(
      "minimesh_monitor_mesh_events_total",
      "Applications this monitor saw join (a lease granted) or leave the mesh, by event.",
      "event",
      { join: more.joins, leave: more.leaves },
    ),
  ];
}
