/**
 * The process's own figures for `/metrics`, named as Prometheus's client libraries name them
 * (`process_*`, as prom-client's defaults), plus the event loop's lag and the build.
 *
 * The lag is sampled only once `/metrics` has been read: a timer that wakes twice a second
 * (unref'd, so it never keeps a process alive) measures how late it fires; an instance that is
 * never scraped pays nothing. Garbage collections are counted likewise, where the runtime reports
 * them (Node's `gc` performance entries; Deno reports none, so it serves no GC figures).
 *
 * @module
 */
import process from "node:process";
import { PerformanceObserver } from "node:perf_hooks";
import type { MetricFamily } from "./metrics.ts";
import { VERSION } from "./libraries.ts";

const LAG_EVERY_MS = 500;
/** Samples of the lag kept: the gauge is the worst of the last 10 s. */
const LAG_SAMPLES = 20;

let lagTimer: ReturnType<typeof setInterval> | undefined;
const lags: number[] = [];

function startLagSampler(): void {
  if (lagTimer !== undefined) return;
  let due = performance.now() + LAG_EVERY_MS;
  lagTimer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - due));
    if (lags.length > LAG_SAMPLES) lags.shift();
    due = now + LAG_EVERY_MS;
  }, LAG_EVERY_MS);
  // Deno's and Node's timers both have unref; the sampler must not keep a process running.
  (lagTimer as unknown as { unref?: () => void }).unref?.();
}

// Node's kinds of collection (perf_hooks constants NODE_PERFORMANCE_GC_*).
const GC_KINDS: Record<number, string> = { 1: "minor", 2: "major", 4: "incremental", 8: "weakcb" };
let gcObserver: PerformanceObserver | undefined | null;
const gc = new Map<string, { count: number; seconds: number }>();

function startGcObserver(): void {
  if (gcObserver !== undefined) return;
  try {
    gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const detail = (e as unknown as { detail?: { kind?: number } }).detail;
        const kind = GC_KINDS[detail?.kind ?? 0] ?? "other";
        const g = gc.get(kind) ?? { count: 0, seconds: 0 };
        g.count++;
        g.seconds += e.duration / 1000;
        gc.set(kind, g);
      }
    });
    gcObserver.observe({ entryTypes: ["gc"] });
  } catch {
    gcObserver = null; // not reported by this runtime
  }
}

/** The runtime this runs on, its version and V8's (also `/info`'s `runtime`). */
export function runtime(): { name: string; version: string; v8: string } {
  const v = process.versions as Record<string, string | undefined>;
  return v.deno
    ? { name: "deno", version: v.deno, v8: v.v8 ?? "" }
    : { name: "node", version: v.node ?? "", v8: v.v8 ?? "" };
}

/** The process's families: CPU, memory, start time, event-loop lag, build. */
export function processMetrics(startTime: Date): MetricFamily[] {
  startLagSampler();
  startGcObserver();
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  const rt = runtime();
  const gauge = (name: string, help: string, value: number): MetricFamily => ({
    name,
    help,
    type: "gauge",
    samples: [{ value }],
  });
  return [
    {
      name: "process_cpu_seconds_total",
      help: "Total user and system CPU time spent in seconds.",
      type: "counter",
      samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
    },
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.", memory.rss),
    gauge(
      "process_start_time_seconds",
      "Start time of the process since unix epoch in seconds.",
      startTime.getTime() / 1000,
    ),
    gauge("minimesh_heap_used_bytes", "JavaScript heap in use, in bytes.", memory.heapUsed),
    gauge("minimesh_heap_total_bytes", "JavaScript heap reserved, in bytes.", memory.heapTotal),
    gauge(
      "minimesh_event_loop_lag_seconds",
      "The longest delay of a timer in the last 10 s: how long the event loop was blocked.",
      (lags.length === 0 ? 0 : Math.max(...lags)) / 1000,
    ),
    // Only where collections are reported: a runtime that reports none serves no zeros.
    ...(gc.size > 0
      ? [
        {
          name: "minimesh_gc_collections_total",
          help: "Garbage collections since the first scrape, by kind.",
          type: "counter" as const,
          samples: [...gc].map(([kind, g]) => ({ labels: { kind }, value: g.count })),
        },
        {
          name: "minimesh_gc_seconds_total",
          help: "Time spent in garbage collections since the first scrape, by kind.",
          type: "counter" as const,
          samples: [...gc].map(([kind, g]) => ({ labels: { kind }, value: g.seconds })),
        },
      ]
      : []),
    {
      name: "minimesh_build_info",
      help: "Always 1; the labels say which minimesh and runtime this is.",
      type: "gauge",
      samples: [{
        labels: { version: VERSION, runtime: rt.name, runtime_version: rt.version },
        value: 1,
      }],
    },
  ];
}
