/**
 * Metrics as plain numbers, kept where the work happens (a route's queue, the connector, the
 * monitor) and read only when asked: counting costs an increment, and nothing is computed until
 * `/metrics` is scraped. {@link prometheusText} writes them in the Prometheus text format 0.0.4.
 *
 * @module
 */

/** One sample of a metric family. */
export interface Sample {
  /** Label names and values (escaped on output). */
  labels?: Record<string, string>;
  /** The value. */
  value: number;
  /** A name suffix for the histogram series: `_bucket`, `_sum` or `_count`. */
  suffix?: string;
}

/** A metric family: name, help, type and samples. */
export interface MetricFamily {
  /** The name, such as `minimesh_route_events_total`. */
  name: string;
  /** What it counts. */
  help: string;
  /** The Prometheus type. */
  type: "counter" | "gauge" | "histogram";
  /** The samples. */
  samples: Sample[];
}

/** Something that contributes metric families when `/metrics` is read. */
export type MetricSource = () => MetricFamily[];

/** Upper bounds (seconds) of the latency histograms' buckets. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** A latency histogram: counts per bucket (not cumulative), their sum and count. */
export class Histogram {
  readonly #counts = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  #sum = 0;
  #count = 0;

  /** Records one duration in milliseconds. */
  observe(ms: number): void {
    const s = ms / 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && s > LATENCY_BUCKETS[i]) i++;
    this.#counts[i]++;
    this.#sum += s;
    this.#count++;
  }

  /** The histogram's samples (`_bucket` cumulative with `le`, `_sum`, `_count`). */
  samples(labels: Record<string, string> = {}): Sample[] {
    const out: Sample[] = [];
    let cumulative = 0;
    LATENCY_BUCKETS.forEach((le, i) => {
      cumulative += this.#counts[i];
      out.push({ labels: { ...labels, le: String(le) }, value: cumulative, suffix: "_bucket" });
    });
    out.push({ labels: { ...labels, le: "+Inf" }, value: this.#count, suffix: "_bucket" });
    out.push({ labels, value: this.#sum, suffix: "_sum" });
    out.push({ labels, value: this.#count, suffix: "_count" });
    return out;
  }
}

/** A counter family with one sample per value of one label (`{ join: 3, leave: 1 }`). */
export function countersBy(
  name: string,
  help: string,
  label: string,
  counts: Record<string, number>,
): MetricFamily {
  return {
    name,
    help,
    type: "counter",
    samples: Object.entries(counts).map(([k, value]) => ({ labels: { [label]: k }, value })),
  };
}

/** `minimesh_kafka_up`, served by applications and monitors alike. */
export function kafkaUpFamily(up: boolean): MetricFamily {
  return {
    name: "minimesh_kafka_up",
    help: "1 while the Kafka client reaches the broker, 0 from a failed connection until it does.",
    type: "gauge",
    samples: [{ value: up ? 1 : 0 }],
  };
}

const escapeLabel = (v: string) =>
  v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
const escapeHelp = (v: string) => v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");

function number(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/**
 * The families in the Prometheus text exposition format (version 0.0.4).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { prometheusText } from "./metrics.ts";
 * const text = prometheusText([{
 *   name: "minimesh_route_events_total",
 *   help: "Events a route handled.",
 *   type: "counter",
 *   samples: [{ labels: { route: "hello.world" }, value: 3 }],
 * }]);
 * assert.match(text, /^minimesh_route_events_total\{route="hello.world"\} 3$/m);
 * ```
 */
export function prometheusText(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      const text = labels.length
        ? `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
        : "";
      lines.push(`${f.name}${s.suffix ?? ""}${text} ${number(s.value)}`);
    }
  }
  return lines.join("\n") + "\n";
}
