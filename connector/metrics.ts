/**
 * The connector's figures for `/metrics`: records and bytes through Kafka, peers, the lease,
 * the records skipped by reason (the counters of `delivery.ts`), whether Kafka is reachable,
 * and the joins and leaves of peers.
 *
 * @module
 */
import { countersBy, kafkaUpFamily } from "../bus/metrics.ts";
import type { MetricFamily } from "../bus/metrics.ts";
import type { ConnectorStats, Traffic } from "./delivery.ts";

/** What the connector's metrics are read from. */
export interface ConnectorFigures {
  stats: Readonly<ConnectorStats>;
  traffic: Readonly<Traffic>;
  peers: number;
  leased: boolean;
  /** Whether the Kafka client reaches the broker (see `KafkaClient.available`). */
  kafkaUp: boolean;
  /** Peers that joined and left since this instance started. */
  joins: number;
  leaves: number;
  /** Per partition this instance reads: records written and not yet handled. */
  lag: { topic: string; partition: number; lag: number }[];
}

/** The connector's metric families. */
export function connectorMetrics(f: ConnectorFigures): MetricFamily[] {
  const both = (in_: number, out: number) => [
    { labels: { direction: "in" }, value: in_ },
    { labels: { direction: "out" }, value: out },
  ];
  return [
    {
      name: "minimesh_mesh_records_total",
      help: "Kafka records this instance read from its partition, and wrote to peers'.",
      type: "counter",
      samples: both(f.traffic.recordsIn, f.traffic.recordsOut),
    },
    {
      name: "minimesh_mesh_bytes_total",
      help: "Bytes of those records' values.",
      type: "counter",
      samples: both(f.traffic.bytesIn, f.traffic.bytesOut),
    },
    {
      name: "minimesh_mesh_skipped_records_total",
      help: "Records skipped, by reason (see docs/security.md).",
      type: "counter",
      samples: Object.entries(f.stats).map(([reason, value]) => ({ labels: { reason }, value })),
    },
    {
      name: "minimesh_mesh_peers",
      help: "Peers in the routing table.",
      type: "gauge",
      samples: [{ value: f.peers }],
    },
    {
      name: "minimesh_mesh_lease",
      help: "1 while this instance holds its partition (is in the mesh), else 0.",
      type: "gauge",
      samples: [{ value: f.leased ? 1 : 0 }],
    },
    kafkaUpFamily(f.kafkaUp),
    {
      name: "minimesh_mesh_consumer_lag_records",
      help: "Records written to a partition this instance reads and not yet handled, as of its " +
        "last fetch (what Kafka tools show as a consumer group's lag).",
      type: "gauge",
      samples: f.lag.map((l) => ({
        labels: { topic: l.topic, partition: String(l.partition) },
        value: l.lag,
      })),
    },
    countersBy(
      "minimesh_mesh_peer_events_total",
      "Peers this instance saw join or leave the mesh, by event.",
      "event",
      { join: f.joins, leave: f.leaves },
    ),
  ];
}
