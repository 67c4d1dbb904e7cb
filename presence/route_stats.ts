/**
 * The mesh's routes as their callers see them, for the dashboard's route view: each caller
 * reports what its requests saw per route every 5 s (`calls` in its `stats` frame, see
 * `bus/caller_stats.ts`, with the time it covers). A route's rate is the sum of its callers'
 * latest rates (each its calls over its own interval, so no report is split between slots);
 * its p50 and p99 come from the callers' latency buckets of the last minute, added up; its
 * history is kept in slots of 5 s over the last five minutes.
 *
 * Bounded: at most {@link MAX_ROUTES} routes (the ones not called for longest go first), sixty
 * slots of counts each, and latency buckets for the last minute only.
 *
 * @module
 */
import { addBuckets, fineQuantile } from "../bus/caller_stats.ts";
import type { CallReport } from "../bus/caller_stats.ts";

/** Length of a slot (ms): the applications' report interval. */
export const SLOT_MS = 5000;
/** Slots of history: five minutes. */
export const SLOTS = 60;
/** A caller whose last report is older than this no longer counts in a route's rate. */
const CALLER_STALE_MS = 2.5 * SLOT_MS;
/** Callers kept per route (the most recent): bounds a route called from everywhere. */
const MAX_CALLERS = 1000;
/** Slots the latency quantiles are taken over (the last minute). */
const LATENCY_SLOTS = 12;
/** The most routes kept. */
export const MAX_ROUTES = 10_000;

/** A route's figures from the callers' side. */
export interface RouteFigures {
  /** Requests a second: its callers' latest rates added up. */
  rate: number;
  /** Of those, failed (5xx) or timed out, a second. */
  errorRate: number;
  /** Median round trip over the last minute (ms), if any. */
  p50: number | null;
  /** 99th percentile of the round trip over the last minute (ms), if any. */
  p99: number | null;
  /** Requests a second in each slot of the last five minutes, oldest first. */
  history: number[];
}

interface Caller {
  rate: number;
  errorRate: number;
  at: number;
}

class Route {
  readonly callers = new Map<string, Caller>();
  readonly calls = new Float64Array(SLOTS);
  readonly latency: (Map<number, number> | undefined)[] = new Array(LATENCY_SLOTS);
  /** The slot last written. */
  slot: number;

  constructor(slot: number) {
    this.slot = slot;
  }

  // Moves to `slot`, clearing the slots skipped since the last write.
  advance(slot: number): void {
    if (slot <= this.slot) return;
    const from = Math.max(this.slot + 1, slot - SLOTS + 1);
    for (let s = from; s <= slot; s++) {
      this.calls[s % SLOTS] = 0;
      this.latency[s % LATENCY_SLOTS] = undefined;
    }
    this.slot = slot;
  }
}

const round = (n: number, places = 1) => Math.round(n * 10 ** places) / 10 ** places;

/** The callers' reports, added up per route. */
export class RouteStats {
  readonly #routes = new Map<string, Route>();

  /** Routes known. */
  get size(): number {
    return this.#routes.size;
  }

  /** Adds the report of the caller `origin`, covering the last `ms` of its requests. */
  add(origin: string, calls: readonly CallReport[], ms: number, now: number = Date.now()): void {
    const slot = Math.floor(now / SLOT_MS);
    const seconds = Math.max(ms, 1) / 1000;
    for (const c of calls) {
      let r = this.#routes.get(c.route);
      if (r === undefined) {
        if (this.#routes.size >= MAX_ROUTES) this.#evictOldest();
        this.#routes.set(c.route, r = new Route(slot));
      } else {
        // Most recently called last: the first in the map is the one to evict.
        this.#routes.delete(c.route);
        this.#routes.set(c.route, r);
      }
      r.advance(slot);
      r.callers.delete(origin);
      if (r.callers.size >= MAX_CALLERS) r.callers.delete(r.callers.keys().next().value!);
      r.callers.set(origin, { rate: c.calls / seconds, errorRate: c.errors / seconds, at: now });
      r.calls[slot % SLOTS] += c.calls;
      let buckets = r.latency[slot % LATENCY_SLOTS];
      if (buckets === undefined) r.latency[slot % LATENCY_SLOTS] = buckets = new Map();
      addBuckets(buckets, c.latency);
    }
  }

  /** The routes called in the last five minutes. */
  routes(now: number = Date.now()): string[] {
    const slot = Math.floor(now / SLOT_MS);
    return [...this.#routes].filter(([, r]) => slot - r.slot < SLOTS).map(([name]) => name);
  }

  /** A route's figures now, or undefined when it was not called in the last five minutes. */
  figures(route: string, now: number = Date.now()): RouteFigures | undefined {
    const r = this.#routes.get(route);
    const slot = Math.floor(now / SLOT_MS);
    if (r === undefined || slot - r.slot >= SLOTS) return undefined;
    const at = (s: number, a: Float64Array) => s > r.slot || r.slot - s >= SLOTS ? 0 : a[s % SLOTS];
    let rate = 0;
    let errorRate = 0;
    for (const [origin, c] of r.callers) {
      if (now - c.at > CALLER_STALE_MS) {
        r.callers.delete(origin);
        continue;
      }
      rate += c.rate;
      errorRate += c.errorRate;
    }
    const merged = new Map<number, number>();
    for (let s = slot - LATENCY_SLOTS + 1; s <= slot; s++) {
      if (s > r.slot || r.slot - s >= LATENCY_SLOTS) continue;
      addBuckets(merged, r.latency[s % LATENCY_SLOTS] ?? []);
    }
    const q = (x: number) => {
      const v = fineQuantile(merged, x);
      return v === undefined ? null : round(v, v < 10 ? 2 : 1);
    };
    const history: number[] = [];
    for (let s = slot - SLOTS + 1; s <= slot; s++) {
      history.push(round(at(s, r.calls) / (SLOT_MS / 1000)));
    }
    return {
      rate: round(rate),
      errorRate: round(errorRate),
      p50: q(0.5),
      p99: q(0.99),
      history,
    };
  }

  #evictOldest(): void {
    const first = this.#routes.keys().next();
    if (!first.done) this.#routes.delete(first.value);
  }
}
