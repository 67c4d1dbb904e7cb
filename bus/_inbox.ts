// Pending requests waiting for their replies (the Java original's temporary inbox).
// A reply finds its request by correlation id: the inbox id, or `<inbox id>-<n>` for the n-th
// event of a fork-and-join.
//
// Replies cannot be forged from the mesh: a request that leaves this process carries, in front
// of its id, the 128-bit random token of the peer it went to (`<32 hex><id>`). Only that peer
// sees the token, and a reply from the mesh completes a request only with the token of the peer
// the request went to. Ids that never leave the process stay plain numbers, which keeps the
// in-memory path cheap; the mesh cannot complete those at all.
import { WaiterTable } from "./_waiters.ts";
import { randomHex32 } from "./_ids.ts";
import { DeadlineTimer } from "./_deadlines.ts";
import type { Deadline } from "./_deadlines.ts";
import { EventEnvelope, peekTags, resetTags } from "./envelope.ts";
import { RequestTimeoutError } from "./errors.ts";
import { CallerStats } from "./caller_stats.ts";
import { statusOf } from "./_executor.ts";
import { splitAddress } from "./route.ts";

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

// The tags without rpc (`delete` would turn the map into a slow dictionary object); undefined
// when nothing else is left, which is the common case.
function withoutRpc(tags: Record<string, string>): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const k in tags) if (k !== "rpc") (out ??= {})[k] = tags[k];
  return out;
}

/** Clears the engine fields of a reply and restores the caller's correlation id. */
function finish(reply: EventEnvelope, started: number, cid: string | undefined): EventEnvelope {
  const tags = peekTags(reply);
  if (tags?.rpc !== undefined) resetTags(reply, withoutRpc(tags));
  reply.to = undefined;
  reply.replyTo = undefined;
  if (started >= 0) reply.roundTrip = round3(performance.now() - started);
  reply.correlationId = cid;
  return reply;
}

// Waiters implement Deadline directly: no base class, because derived-class construction is
// measurably slower on this path.

// What a waiter's resolve and reject become once it is settled. A settled waiter lets go of its
// promise's resolving functions: one that something old still holds (its deadline's queue, a
// waiter promoted while it waited) otherwise keeps the promise and its reply alive through
// every young-generation collection, and under Node 24's V8 the process then spent about half
// its time collecting garbage (bench/node_bus_bench.ts).
const SETTLED = (): void => {};

export class SingleWaiter implements Deadline {
  gen = 0;
  settled = false;
  fifo: unknown = undefined;
  callerCid: string | undefined = undefined;
  /** The mesh peer the request went to, if it left this instance. */
  peer: string | undefined = undefined;
  /** That peer's token, the prefix of the correlation id it was given. */
  token: string | undefined = undefined;
  /** The request, while it may be sent to another instance if its peer leaves. */
  retry: EventEnvelope | undefined = undefined;
  /** The route called, when the round trip is timed (the caller's figures count it). */
  route: string | undefined = undefined;
  resolve!: (value: EventEnvelope) => void;
  reject!: (error: Error) => void;
  readonly promise: Promise<EventEnvelope>;
  /** `performance.now()` at the start, or -1 when the round trip is not measured. */
  readonly started: number;

  constructor(
    readonly inbox: Inbox,
    /** Key in the inbox; its decimal form is the correlation id of the request. */
    readonly id: number,
    readonly timeout: number,
    readonly timeoutException: boolean,
    timed: boolean,
  ) {
    this.started = timed ? performance.now() : -1;
    this.promise = new Promise<EventEnvelope>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  onReply(reply: EventEnvelope): void {
    const resolve = this.resolve;
    this.resolve = this.reject = SETTLED;
    this.retry = undefined;
    const done = finish(reply, this.started, this.callerCid);
    if (this.route !== undefined) this.inbox.calls.record(this.route, done.status, done.roundTrip!);
    resolve(done);
  }

  expire(): void {
    this.inbox.forget(this.id);
    const { resolve, reject } = this;
    this.resolve = this.reject = SETTLED;
    this.retry = undefined;
    if (this.route !== undefined) {
      this.inbox.calls.record(this.route, 408, performance.now() - this.started);
    }
    if (this.timeoutException) reject(new RequestTimeoutError(this.timeout));
    else {
      const timeout = new EventEnvelope({ status: 408, body: `Timeout for ${this.timeout} ms` });
      resolve(finish(timeout, this.started, this.callerCid));
    }
  }
}

export class MultiWaiter implements Deadline {
  gen = 0;
  settled = false;
  fifo: unknown = undefined;
  callerCids: (string | undefined)[] = [];
  /** The mesh peer each request went to, if it left this instance. */
  peers: (string | undefined)[] | undefined = undefined;
  /** Those peers' tokens. */
  tokens: (string | undefined)[] | undefined = undefined;
  replies: (EventEnvelope | undefined)[] = [];
  /** The route of each request (the caller's figures count them). */
  routes: string[] = [];
  received = 0;
  /** Called with each reply as it arrives (fork-and-join as an async iterable). */
  each: ((reply: EventEnvelope) => void) | undefined = undefined;
  resolve!: (value: EventEnvelope[]) => void;
  reject!: (error: Error) => void;
  readonly promise: Promise<EventEnvelope[]>;
  readonly started: number = performance.now();

  constructor(
    readonly inbox: Inbox,
    readonly id: number,
    readonly timeout: number,
    readonly timeoutException: boolean,
  ) {
    this.promise = new Promise<EventEnvelope[]>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  onReply(reply: EventEnvelope, index: number): void {
    const n = this.callerCids.length;
    if (!(index >= 1 && index <= n) || this.replies[index - 1] !== undefined) return;
    const finished = finish(reply, this.started, this.callerCids[index - 1]);
    this.replies[index - 1] = finished;
    const route = this.routes[index - 1];
    if (route !== undefined) this.inbox.calls.record(route, finished.status, finished.roundTrip!);
    this.each?.(finished);
    if (++this.received === n) {
      this.inbox.forget(this.id);
      this.inbox.deadlines.settle(this);
      const resolve = this.resolve;
      this.resolve = this.reject = SETTLED;
      resolve(this.replies as EventEnvelope[]);
    }
  }

  expire(): void {
    this.inbox.forget(this.id);
    const { resolve, reject } = this;
    this.resolve = this.reject = SETTLED;
    const ms = performance.now() - this.started;
    this.routes.forEach((route, i) => {
      if (this.replies[i] === undefined) this.inbox.calls.record(route, 408, ms);
    });
    if (this.timeoutException) reject(new RequestTimeoutError(this.timeout));
    else resolve(this.replies.filter((r): r is EventEnvelope => r !== undefined));
  }
}

// Waiters are keyed by a number: hashing a fresh 32-character string for a Map costs more than
// the rest of an in-memory request. The correlation id on the wire is the number in decimal
// (peers treat it as an opaque string and copy it into the reply).
export class Inbox {
  #waiters = new WaiterTable<SingleWaiter | MultiWaiter>();
  #next = 0;
  /** Mesh peer origin → the random token that prefixes the correlation ids it is given. */
  readonly #tokens = new Map<string, string>();
  /** Mesh peer origin → how many requests wait on its replies (the connector's balancer reads it). */
  readonly #waitingOn = new Map<string, number>();
  readonly deadlines: DeadlineTimer = new DeadlineTimer();
  /** What the requests that ended saw, per route and status. */
  readonly calls: CallerStats = new CallerStats();

  /** Requests still waiting. */
  get pending(): number {
    return this.#waiters.size;
  }

  /** How many requests wait on replies from the mesh peer `origin`. */
  waiting(origin: string): number {
    return this.#waitingOn.get(origin) ?? 0;
  }

  /** Drops a waiter without settling it (used when it expires or completes). */
  forget(id: number): void {
    const w = this.#waiters.get(id);
    if (w !== undefined) this.#release(w);
    this.#waiters.delete(id);
  }

  #count(origin: string, by: number): void {
    const n = (this.#waitingOn.get(origin) ?? 0) + by;
    if (n > 0) this.#waitingOn.set(origin, n);
    else this.#waitingOn.delete(origin);
  }

  // The waiter's requests no longer wait on their peers (it settled, or they go elsewhere).
  #release(w: SingleWaiter | MultiWaiter): void {
    if (w instanceof SingleWaiter) {
      if (w.peer !== undefined) this.#count(w.peer, -1);
      w.peer = undefined;
    } else if (w.peers !== undefined) {
      w.peers.forEach((peer, i) => this.#releaseOne(w, i, peer));
    }
  }

  #releaseOne(w: MultiWaiter, i: number, peer: string | undefined): void {
    if (peer === undefined) return;
    this.#count(peer, -1);
    w.peers![i] = undefined;
  }

  /** Ends a request with an error (its event could not be sent). */
  fail(w: SingleWaiter | MultiWaiter, error: Error): void {
    if (this.#waiters.get(w.id) !== w) return;
    this.cancel(w);
    const ms = performance.now() - w.started;
    if (w instanceof SingleWaiter) {
      if (w.route !== undefined) this.calls.record(w.route, statusOf(error), ms);
    } else {
      w.routes.forEach((route, i) => {
        if (w.replies[i] === undefined) this.calls.record(route, statusOf(error), ms);
      });
    }
    const reject = w.reject;
    w.resolve = w.reject = SETTLED;
    reject(error);
  }

  /** Withdraws a request whose event could not be sent. */
  cancel(w: { id: number } & Deadline): void {
    this.forget(w.id);
    this.deadlines.settle(w);
  }

  /**
   * Opens a wait for one reply; send the request with `String(waiter.id)` as its correlation
   * id (or cancel the waiter if it cannot be sent). The caller's own correlation id is restored
   * on the reply. `timed` measures the round trip (a clock read costs a third of an in-memory
   * request, so untraced local calls skip it).
   */
  single(
    timeout: number,
    timeoutException: boolean,
    callerCid: string | undefined,
    timed: boolean,
    route?: string,
  ): SingleWaiter {
    const w = new SingleWaiter(this, ++this.#next, timeout, timeoutException, timed);
    w.callerCid = callerCid;
    if (timed && route !== undefined) w.route = splitAddress(route).route;
    this.#waiters.add(w);
    this.deadlines.add(w);
    return w;
  }

  /**
   * Opens a wait for the replies of a fork-and-join; request i (1-based) goes with the
   * correlation id `<waiter.id>-<i>`. It resolves with the replies in request order.
   */
  multi(
    timeout: number,
    timeoutException: boolean,
    callerCids: (string | undefined)[],
    routes: (string | undefined)[] = [],
  ): MultiWaiter {
    const w = new MultiWaiter(this, ++this.#next, timeout, timeoutException);
    w.callerCids = callerCids;
    w.routes = routes.map((r) => splitAddress(r ?? "").route);
    w.replies = new Array(callerCids.length);
    this.#waiters.add(w);
    this.deadlines.add(w);
    return w;
  }

  /**
   * Notes that the request with correlation id `cid` is going to the mesh peer `origin`, so
   * that {@link Inbox.waitingOn} can find it if that peer leaves, and returns the correlation
   * id to send instead: the peer's token in front of the id. An id that is not of a waiting
   * request comes back unchanged.
   */
  sentTo(cid: string, origin: string): string {
    const id = cid.length > TOKEN ? cid.slice(TOKEN) : cid;
    const found = this.#slot(id);
    if (found === undefined) return cid;
    const [w, i] = found;
    // An answered part of a fork-and-join waits no more: nothing for a peer to complete.
    if (w instanceof MultiWaiter && w.replies[i] !== undefined) return cid;
    let token = this.#tokens.get(origin);
    if (token === undefined) this.#tokens.set(origin, token = randomHex32());
    if (w instanceof SingleWaiter) {
      this.#release(w);
      w.peer = origin;
      w.token = token;
    } else {
      this.#releaseOne(w, i, w.peers?.[i]);
      (w.peers ??= [])[i] = origin;
      (w.tokens ??= [])[i] = token;
    }
    this.#count(origin, 1);
    return token + id;
  }

  /** Forgets a peer that left: requests sent to it later get a new token. */
  forgetPeer(origin: string): void {
    this.#tokens.delete(origin);
  }

  /**
   * The requests waiting on the mesh peer `origin` that may go to another instance (each only
   * once), of those `which` accepts. They stop waiting on that peer; their events, returned,
   * are to be sent again.
   */
  retriesFor(origin: string, which?: (event: EventEnvelope) => boolean): EventEnvelope[] {
    const events: EventEnvelope[] = [];
    for (const w of this.#waiters.values()) {
      if (!(w instanceof SingleWaiter) || w.peer !== origin || w.retry === undefined) continue;
      if (which !== undefined && !which(w.retry)) continue;
      const e = w.retry;
      this.#release(w);
      w.retry = w.token = undefined;
      e.correlationId = String(w.id);
      events.push(e);
    }
    return events;
  }

  /** Correlation ids of the requests still waiting on a reply from the mesh peer `origin`. */
  waitingOn(origin: string): string[] {
    const cids: string[] = [];
    for (const w of this.#waiters.values()) {
      const key = w.id;
      if (w instanceof SingleWaiter && w.peer === origin) cids.push(w.token + String(key));
      else if (w instanceof MultiWaiter && w.peers !== undefined) {
        w.peers.forEach((peer, i) => {
          if (peer === origin && w.replies[i] === undefined) {
            cids.push(`${w.tokens![i]}${key}-${i + 1}`);
          }
        });
      }
    }
    return cids;
  }

  // The waiter (and, for a fork-and-join, the 0-based index) of an id without its token.
  #slot(id: string): [SingleWaiter | MultiWaiter, number] | undefined {
    const key = +id;
    if (key > 0) {
      const w = this.#waiters.get(key);
      return w instanceof SingleWaiter ? [w, 0] : undefined;
    }
    const dash = id.lastIndexOf("-");
    const multi = dash > 0 ? this.#waiters.get(+id.slice(0, dash)) : undefined;
    const i = Number(id.slice(dash + 1)) - 1;
    return multi instanceof MultiWaiter && i >= 0 && i < multi.callerCids.length
      ? [multi, i]
      : undefined;
  }

  /**
   * Hands a reply from this process to its waiting request. Returns false when no request
   * waits for it (it timed out already, or the id is unknown).
   */
  complete(reply: EventEnvelope): boolean {
    const cid = reply.correlationId;
    if (cid === undefined) return false;
    const key = +cid;
    // The common case: a local request's plain id.
    const w = key > 0 ? this.#waiters.get(key) : undefined;
    if (w instanceof SingleWaiter && w.token === undefined) {
      this.#settle(key, w, reply);
      return true;
    }
    return this.#completeSlot(cid, reply);
  }

  /**
   * Hands a reply that came from the mesh to its waiting request, only if the request went to
   * a peer and the reply carries that peer's token. Returns false otherwise.
   */
  completeFromPeer(reply: EventEnvelope): boolean {
    const cid = reply.correlationId;
    if (cid === undefined || cid.length <= TOKEN) return false;
    return this.#completeSlot(cid, reply);
  }

  #completeSlot(cid: string, reply: EventEnvelope): boolean {
    const id = cid.length > TOKEN ? cid.slice(TOKEN) : cid;
    const found = this.#slot(id);
    if (found === undefined) return false;
    const [w, i] = found;
    const token = (w instanceof SingleWaiter ? w.token : w.tokens?.[i]) ?? "";
    if (cid.length !== token.length + id.length || !cid.startsWith(token)) return false;
    if (w instanceof SingleWaiter) this.#settle(w.id, w, reply);
    else {
      this.#releaseOne(w, i, w.peers?.[i]);
      w.onReply(reply, i + 1);
    }
    return true;
  }

  #settle(key: number, w: SingleWaiter, reply: EventEnvelope): void {
    if (w.peer !== undefined) this.#release(w);
    this.#waiters.delete(key);
    this.deadlines.settle(w);
    w.onReply(reply);
  }
}

/** Length of a peer token (128 bits in hex). */
const TOKEN = 32;
