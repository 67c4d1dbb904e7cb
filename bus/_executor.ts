/**
 * How a registered function runs: one event on one of its instances, with the headers view the
 * function sees, its reply (or error reply) to the caller, its span when an OpenTelemetry SDK
 * is there, and its figures for /metrics. The platform keeps the routes and hands each queue's
 * events to a worker of this.
 *
 * @module
 */
import type { Span } from "@opentelemetry/api";
import { EventEnvelope, peekHeaders, peekTags } from "./envelope.ts";
import { inTrace, logger } from "./_log.ts";
import { newSpanId } from "./trace.ts";
import type { ServiceQueue } from "./_service_queue.ts";
import type { Telemetry } from "./telemetry.ts";

const log = logger("platform");

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The status an error becomes in a reply: its own `status` (400-599) or 500. */
export function statusOf(error: unknown): number {
  const s = (error as { status?: unknown } | null)?.status;
  return typeof s === "number" && Number.isInteger(s) && s >= 400 && s <= 599 ? s : 500;
}

function stackOf(error: unknown, lines: number): string | undefined {
  const stack = (error as { stack?: unknown } | null)?.stack;
  if (typeof stack !== "string") return undefined;
  const all = stack.split("\n");
  return all.length <= lines
    ? stack
    : all.slice(0, lines).join("\n") + `\n...(${all.length - lines})`;
}

/** What the executor needs of its platform. */
export interface ExecutorContext {
  /** The platform's origin (a span attribute). */
  readonly origin: string;
  readonly telemetry: Telemetry;
  /** Lines of a stack trace an error reply carries. */
  readonly stackLines: number;
  /** Delivers a reply. */
  deliver(reply: EventEnvelope): void | Promise<void>;
}

/** Runs the events of one platform's routes. */
export class Executor {
  readonly #c: ExecutorContext;
  // Read once, as the platform did: it is on every timed event's path.
  readonly #metering: boolean;
  /** Whether every execution is timed: with a mesh (a clock read is nothing next to a network hop), or with metering. */
  timed: boolean;

  /** The executor of the platform that `context` describes. */
  constructor(context: ExecutorContext) {
    this.#c = context;
    this.#metering = this.timed = context.telemetry.metering;
  }

  /** The worker for a new route: the untraced one stays free of any telemetry check. */
  worker(): (q: ServiceQueue, event: EventEnvelope, instance: number) => void {
    return this.#c.telemetry.tracing ? this.invokeTraced : this.invoke;
  }

  // The worker: runs one event on one instance and sends the reply, if one is wanted.
  // Execution time is measured for traced events (and always with a mesh): under Deno a clock
  // read costs about a third of a whole in-memory request.
  readonly invoke = (q: ServiceQueue, event: EventEnvelope, instance: number): void => {
    const started = event.traceId === undefined && !this.timed ? -1 : performance.now();
    let result: unknown;
    try {
      result = event.traceId === undefined
        ? q.fn(this.#headersView(q.route, event), event.body, instance, event)
        : inTrace(
          event.traceId,
          event.tracePath,
          () => q.fn(this.#headersView(q.route, event), event.body, instance, event),
        );
    } catch (e) {
      return this.#finished(q, event, instance, started, undefined, e, true);
    }
    if (result !== null && typeof (result as Promise<unknown>)?.then === "function") {
      // Promise.resolve adopts any thenable, even one whose `then` throws, without
      // ever throwing here.
      Promise.resolve(result).then(
        (value) => this.#finished(q, event, instance, started, value, undefined, false),
        (e) => this.#finished(q, event, instance, started, undefined, e, true),
      );
    } else {
      this.#finished(q, event, instance, started, result, undefined, false);
    }
  };

  // Replies, counts and frees the instance, with one clock read for both the reply's execution
  // time and the route's latency.
  #finished(
    q: ServiceQueue,
    event: EventEnvelope,
    instance: number,
    started: number,
    value: unknown,
    error: unknown,
    failed: boolean,
  ): void {
    const ms = started < 0 ? -1 : performance.now() - started;
    this.reply(q.route, event, ms, value, error, failed);
    this.#done(q, instance, ms, failed);
  }

  // The worker with an OpenTelemetry SDK: the execution is a span, ended with its outcome. (Its
  // own method, so that the untraced worker above stays as lean as it was.)
  readonly invokeTraced = (q: ServiceQueue, event: EventEnvelope, instance: number): void => {
    const span = this.#span(q.route, event);
    const started = performance.now();
    const finish = (value: unknown, error: unknown, failed: boolean) => {
      const ms = performance.now() - started;
      this.reply(q.route, event, ms, value, error, failed, span);
      this.#c.telemetry.endExecution(
        span,
        failed ? (error as Error)?.message ?? String(error) : undefined,
        failed ? statusOf(error) : 200,
      );
      this.#done(q, instance, ms, failed);
    };
    let result: unknown;
    try {
      const run = () => q.fn(this.#headersView(q.route, event, span), event.body, instance, event);
      result = event.traceId === undefined ? run() : inTrace(event.traceId, event.tracePath, run);
    } catch (e) {
      return finish(undefined, e, true);
    }
    if (result !== null && typeof (result as Promise<unknown>)?.then === "function") {
      Promise.resolve(result).then(
        (value) => finish(value, undefined, false),
        (e) => finish(undefined, e, true),
      );
    } else {
      finish(result, undefined, false);
    }
  };

  #span(route: string, event: EventEnvelope): Span | undefined {
    return this.#c.telemetry.startExecution(
      route,
      event.replyTo !== undefined,
      event.traceId,
      event.spanId,
      {
        "minimesh.route": route,
        "minimesh.origin": this.#c.origin,
        "minimesh.from": event.from ?? "",
      },
    );
  }

  // Counts the event for /metrics (its latency `ms` only when it was timed, otherwise -1) and
  // frees the instance.
  #done(q: ServiceQueue, instance: number, ms: number, failed: boolean): void {
    q.handled++;
    if (failed) q.failed++;
    if (ms >= 0) {
      q.latency.observe(ms);
      if (this.#metering) this.#c.telemetry.recordDuration(q.route, ms, failed);
    }
    q.done(instance);
  }

  // What a function sees as headers: a copy with the read-only my_* keys set by the platform.
  #headersView(route: string, event: EventEnvelope, span?: Span): Record<string, string> {
    const view: Record<string, string> = {};
    const src = peekHeaders(event);
    if (src !== undefined) { for (const k in src) if (!k.startsWith("my_")) view[k] = src[k]; }
    view.my_route = route;
    const tags = peekTags(event);
    if (event.traceId !== undefined) {
      view.my_trace_id = event.traceId;
      if (event.tracePath !== undefined) view.my_trace_path = event.tracePath;
      const state = tags?.tracestate;
      if (state !== undefined) view.my_tracestate = state;
      // Calls the function makes are children of its span.
      if (span !== undefined) view.my_span_id = span.spanContext().spanId;
    }
    const cid = tags?.my_cid;
    if (cid !== undefined) view.my_correlation_id = cid;
    return view;
  }

  /** Replies to `event` (when it wants a reply) with the function's `value` or `error`. */
  reply(
    route: string,
    event: EventEnvelope,
    ms: number,
    value: unknown,
    error?: unknown,
    failed = error !== undefined,
    span?: Span,
  ): void {
    if (event.replyTo === undefined) {
      if (failed) {
        log.warn("{route} failed on event {id}: {message}", {
          route,
          id: event.id,
          message: (error as Error)?.message ?? String(error),
          ...(event.traceId === undefined ? {} : { trace_id: event.traceId }),
        });
      }
      return;
    }
    const reply = new EventEnvelope();
    reply.to = event.replyTo;
    reply.from = route;
    reply.correlationId = event.correlationId;
    const tags = peekTags(event);
    if (tags !== undefined) reply.tags = tags;
    reply.traceId = event.traceId;
    reply.tracePath = event.tracePath;
    // A traced reply names the span that answered, as the Java original's do.
    if (event.traceId !== undefined) reply.spanId = span?.spanContext().spanId ?? newSpanId();
    if (ms >= 0) reply.execTime = round3(ms);
    if (failed) {
      reply.status = statusOf(error);
      reply.body = (error as Error)?.message ?? String(error);
      reply.stack = stackOf(error, this.#c.stackLines);
    } else if (value instanceof EventEnvelope) {
      reply.status = value.status;
      reply.headers = value.headers;
      reply.body = value.body;
      reply.type = value.type;
      reply.annotations = value.annotations;
    } else {
      reply.body = value;
    }
    const undelivered = (e: unknown) =>
      log.warn("Reply from {route} to {to} not delivered: {message}", {
        route,
        to: event.replyTo,
        message: (e as Error).message,
        ...(event.traceId === undefined ? {} : { trace_id: event.traceId }),
      });
    try {
      this.#c.deliver(reply)?.catch(undelivered);
    } catch (e) {
      undelivered(e);
    }
  }
}
