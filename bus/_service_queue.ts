// One registered route: its function, its worker instances and the events waiting for a free
// instance. `instances` is the concurrency limit; events beyond it wait in arrival order.
import { Histogram } from "./metrics.ts";
import type { MetricFamily } from "./metrics.ts";
import type { EventEnvelope } from "./envelope.ts";
import { AppError } from "./errors.ts";
import type { LambdaFunction } from "./types.ts";

// The microtask that starts events. Node's queueMicrotask wraps each callback for async hooks
// (an object and a bound function per call, about 6 % of an in-memory request there); a
// resolved promise's `then` queues the same microtask without them, under Deno as cheaply.
const RESOLVED = Promise.resolve();

/** Runs one event on one instance; calls `queue.done(instance)` when the function finished. */
export type Invoker = (queue: ServiceQueue, event: EventEnvelope, instance: number) => void;

export class ServiceQueue {
  readonly route: string;
  readonly fn: LambdaFunction;
  readonly instances: number;
  /** Private functions are not advertised to the mesh; `makePublic` changes that once. */
  isPrivate: boolean;
  /** Events the function finished, and those among them that failed (for /metrics). */
  handled = 0;
  failed = 0;
  /** Execution times of the timed events (traced ones, and all with a mesh). */
  readonly latency: Histogram = new Histogram();
  #free: number[];
  #waiting: EventEnvelope[] = [];
  #waitHead = 0;
  #invoke: Invoker;
  #released = false;
  readonly #limit: number;

  constructor(
    route: string,
    fn: LambdaFunction,
    instances: number,
    isPrivate: boolean,
    invoke: Invoker,
    /** Events that may wait for a free instance; one more is refused (503). */
    limit = Infinity,
  ) {
    this.#limit = limit;
    this.route = route;
    this.fn = fn;
    this.instances = instances;
    this.isPrivate = isPrivate;
    this.#invoke = invoke;
    // Popped from the end, so instance 1 is used first.
    this.#free = Array.from({ length: instances }, (_, i) => instances - i);
  }

  /** Events accepted but not yet started. */
  get backlog(): number {
    return this.#waiting.length - this.#waitHead;
  }

  /** Instances running an event now. */
  get busy(): number {
    return this.instances - this.#free.length;
  }

  /**
   * Accepts an event: it starts on a free instance (in a microtask) or waits its turn.
   *
   * @throws {AppError} 503 when `limit` events wait already: overload must not become memory.
   */
  enqueue(event: EventEnvelope): void {
    if (this.#free.length > 0 && this.backlog === 0) this.#start(event, this.#free.pop()!);
    else if (this.backlog < this.#limit) this.#waiting.push(event);
    else throw new AppError(503, `${this.route} is busy: ${this.#limit} events waiting`);
  }

  // Starts are batched into one microtask, so a burst costs one callback, not one per event.
  // The arrays keep their capacity (a logical length instead of push/length = 0, which
  // reallocates).
  #startEvents: (EventEnvelope | undefined)[] = [];
  #startInstances: number[] = [];
  #starts = 0;
  #start(event: EventEnvelope, instance: number): void {
    this.#startEvents[this.#starts] = event;
    this.#startInstances[this.#starts] = instance;
    if (this.#starts++ === 0) RESOLVED.then(this.#drain);
  }
  #drain = (): void => {
    // Starts added while draining (a function that sends to its own route) join this loop.
    for (let i = 0; i < this.#starts; i++) {
      const event = this.#startEvents[i]!;
      this.#startEvents[i] = undefined;
      this.#invoke(this, event, this.#startInstances[i]);
    }
    this.#starts = 0;
  };

  /** Stops taking events and hands back the ones that were still waiting. */
  release(): EventEnvelope[] {
    this.#released = true;
    const left = this.#waiting.slice(this.#waitHead);
    this.#waiting = [];
    this.#waitHead = 0;
    return left;
  }

  /** The function running on `instance` finished: start the next waiting event, if any. */
  done(instance: number): void {
    if (!this.#released && this.#waitHead < this.#waiting.length) {
      const event = this.#waiting[this.#waitHead];
      this.#waiting[this.#waitHead++] = undefined as unknown as EventEnvelope;
      if (this.#waitHead === this.#waiting.length) {
        this.#waiting = [];
        this.#waitHead = 0;
      } else if (this.#waitHead > 4096 && this.#waitHead * 2 > this.#waiting.length) {
        this.#waiting = this.#waiting.slice(this.#waitHead);
        this.#waitHead = 0;
      }
      this.#start(event, instance);
    } else {
      this.#free.push(instance);
    }
  }
}

// The per-route counters and gauges of /metrics: name, help, type, and how to read them.
type RouteFigure = [string, string, "counter" | "gauge", (q: ServiceQueue) => number];
const ROUTE_FIGURES: RouteFigure[] = [
  ["minimesh_route_events_total", "Events the function finished.", "counter", (q) => q.handled],
  ["minimesh_route_errors_total", "Events it threw or rejected on.", "counter", (q) => q.failed],
  ["minimesh_route_queue_length", "Events waiting for an instance.", "gauge", (q) => q.backlog],
  ["minimesh_route_busy_workers", "Instances running an event now.", "gauge", (q) => q.busy],
];

/**
 * The per-route metrics of `queues`, sorted by route: events, errors, queue length, busy
 * workers, and the latency of timed events (traced ones, and every event with a mesh).
 */
export function routeMetrics(queues: Iterable<ServiceQueue>): MetricFamily[] {
  const qs = [...queues].sort((a, b) => a.route < b.route ? -1 : 1);
  const perRoute = ([name, help, type, value]: RouteFigure): MetricFamily => ({
    name,
    help,
    type,
    samples: qs.map((q) => ({ labels: { route: q.route }, value: value(q) })),
  });
  return [
    ...ROUTE_FIGURES.map(perRoute),
    {
      name: "minimesh_route_duration_seconds",
      help: "Execution time of timed events (traced ones, and every event with a mesh).",
      type: "histogram",
      samples: qs.flatMap((q) => q.latency.samples({ route: q.route })),
    },
  ];
}
