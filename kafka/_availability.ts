// Whether Kafka answers, as both clients judge it: a failed connection to the only broker (or to
// every broker of a cluster) makes the mesh fail at once instead of waiting on retries; one
// broker of several gone is a leader change, which Kafka settles by itself. A cluster that
// stops answering without closing anything (packets dropped, a frozen host) is noticed too: a
// request overdue while nothing at all was heard for `silenceMs`; with several brokers listed, only
// if none of them takes a connection either (one silent broker of three is a leader change, not
// an outage: its connections are renewed, so that what waits on it is asked again of the new
// leader). While down, the broker is asked once a second whether it is back; any answer marks it
// up.
import { connect } from "node:net";
import { clearInterval, clearTimeout, setImmediate, setInterval, setTimeout } from "node:timers";
import { logger } from "../bus/_log.ts";
import { UsualTime } from "../bus/_usual.ts";

const log = logger("kafka");

/** A broker counts as failing this long after its last connection error. */
const FAILING_MS = 10_000;
/** A fetch this many silences overdue, while others are answered, is on a dead connection. */
const STUCK_FACTOR = 3;
/**
 * Nor is a request a dead connection's before this many times the usual answer time: when every
 * request is slow (an overloaded cluster), renewing the connections would only add to it.
 */
const SLOW_FACTOR = 4;
/**
 * How often requests on their way are looked at for silence once one is overdue. Before that the
 * check sleeps until the first could be (an idle client's fetches wait 0.5-3 s: ten checks a
 * second cost it 1.5 ms of CPU a second, bench/idle_bench.ts).
 */
const SILENCE_CHECK_MS = 100;
/**
 * Nothing heard for this many silences, a late produce is checked with a question first (see
 * #check): a busy client hears answers every 0.5 s at least, so its silence counts at once.
 */
const IDLE_GAP = 2.5;

/** A request on its way, answered within `expectMs` by a broker that works. */
interface Waiting extends WaitingOptions {
  since: number;
  expectMs: number;
  boundMs: number | (() => number);
}

/** What is known of a request on its way (see {@link Availability.waiting}). */
export interface WaitingOptions {
  /**
   * What a broker that works answers it within at the latest (0: no bound known): a fetch's
   * wait; a produce's timeout, which the broker enforces even when it waits for replicas; a
   * function when the bound is known only later, as for a produce queued behind others on its
   * connection. `expectMs` when not given.
   */
  boundMs?: number | (() => number);
  /** The brokers (`host:port`) a produce went to, once known. */
  brokers?: () => readonly string[];
  /**
   * The request's own timeout, when the caller tells whether it failed (the function `waiting`
   * returns, called with `true`): no timer of ours watches it, and a failure at that timeout or
   * later is judged as the request overdue. For a long poll, whose own timeout comes a few
   * seconds after the silence would: its timer wakes the process then anyway, and one of ours
   * would wake it once more each fetch (under Deno even when cleared at the answer).
   */
  timeoutMs?: number;
}

/** The availability of one client's cluster (see {@link KafkaClient.available}). */
export class Availability {
  readonly #brokers: readonly string[];
  readonly #clusterSize: () => number | undefined;
  readonly #ask: () => Promise<unknown>;
  /** Brokers whose connection failed, with when it last did (ms). */
  #failing = new Map<string, number>();
  #available = true;
  #lastErrorAt = 0;
  #probe: ReturnType<typeof setInterval> | undefined;
  #probing = false;
  #closed = false;
  /** Aborted when the broker turns unavailable: a loopback in flight ends then, not at its timeout. */
  #down = new AbortController();
  readonly #silenceMs: number;
  readonly #onSilence: () => void;
  #waiting = new Set<Waiting>();
  /** The usual time from a request to its end. */
  readonly #usual = new UsualTime();
  #lastAnswerAt = Date.now();
  /** What was last heard is the answer to a question of #check (see there), not to a request. */
  #heardAsking = false;
  #watch: ReturnType<typeof setTimeout> | undefined;
  /** When the check is due (ms; Infinity: none). */
  #dueAt = Infinity;
  /** While the other brokers are asked whether they answer, after a silence. */
  #confirming = false;
  #partlySaidAt = 0;
  /** Brokers asked whether they take a connection, with when (Infinity: on its way). */
  readonly #brokersAsked = new Map<string, number>();
  readonly #dropBroker: (broker: string) => void;
  readonly #listeners = new Set<() => void>();

  /**
   * @param brokers The bootstrap brokers.
   * @param clusterSize How many brokers the cluster has, once known.
   * @param ask Asks the broker something (a metadata request), while it is down.
   * @param silence After `ms` without any answer while a request is overdue, Kafka counts as
   *   gone, and `drop` is called first to end the connections that wait in vain (their requests
   *   then fail at once, and no timeout of theirs fires after Kafka is back). `dropBroker`
   *   ends the connections to one broker (see {@link WaitingOptions.brokers}).
   */
  constructor(
    brokers: readonly string[],
    clusterSize: () => number | undefined,
    ask: () => Promise<unknown>,
    silence: { ms: number; drop: () => void; dropBroker?: (broker: string) => void } = {
      ms: Infinity,
      drop: () => {},
    },
  ) {
    this.#brokers = brokers;
    this.#clusterSize = clusterSize;
    this.#ask = ask;
    this.#silenceMs = silence.ms;
    this.#onSilence = silence.drop;
    this.#dropBroker = silence.dropBroker ?? (() => silence.drop());
  }

  /**
   * A request leaves that a working broker answers within `expectMs` (a fetch's wait; 0 for a
   * produce), and at the latest within `options.boundMs`. Call what it returns when it ends,
   * answered or not (with `failed`, for {@link WaitingOptions.timeoutMs}).
   */
  waiting(expectMs: number, options: WaitingOptions = {}): (failed?: boolean) => void {
    if (this.#silenceMs === Infinity || this.#closed) return () => {};
    const w: Waiting = {
      since: Date.now(),
      expectMs,
      boundMs: options.boundMs ?? expectMs,
      brokers: options.brokers,
      timeoutMs: options.timeoutMs,
    };
    this.#waiting.add(w);
    if (w.timeoutMs === undefined) this.#arm(w.since + expectMs + this.#silenceMs, w.since);
    return (failed = false) => {
      // Failed at its own timeout: judged as our check would have judged it overdue. (Earlier,
      // a connection failed, which the client's own events tell.) A process that stood still
      // past the timeout is judged so too: one false outage, asked again within a second.
      const now = Date.now();
      const timedOut = failed && now - w.since >= (w.timeoutMs ?? Infinity);
      if (timedOut && this.#waiting.has(w)) this.#check(now);
      if (this.#waiting.delete(w)) this.#usual.add(now - w.since);
      if (this.#waiting.size === 0) {
        // (Under Deno a cleared timer still wakes the process at its time, without running.)
        clearTimeout(this.#watch);
        this.#watch = undefined;
        this.#dueAt = Infinity;
      }
    };
  }

  // The check, due at `at` (the earliest a request on its way can be overdue), at the soonest
  // SILENCE_CHECK_MS after `now`.
  #arm(at: number, now: number): void {
    at = Math.max(at, now + SILENCE_CHECK_MS);
    if (this.#watch !== undefined && this.#dueAt <= at) return;
    clearTimeout(this.#watch);
    this.#dueAt = at;
    this.#watch = setTimeout(() => this.#checkSilence(), at - now).unref();
  }

  #checkSilence(): void {
    const now = Date.now();
    const late = now - this.#dueAt;
    this.#watch = undefined;
    this.#dueAt = Infinity;
    // This process itself stood still (blocked, or stopped by SIGSTOP): the answers may wait
    // unread in its sockets, so the pause is nobody's silence but its own; they are read before
    // the next check.
    if (late > SILENCE_CHECK_MS) {
      this.#lastAnswerAt += late;
      for (const w of this.#waiting) w.since += late;
    } else this.#check(now);
    let next = Infinity;
    for (const w of this.#waiting) {
      if (w.timeoutMs === undefined) next = Math.min(next, w.since + w.expectMs + this.#silenceMs);
    }
    if (next < Infinity) this.#arm(next, now);
  }

  #check(now: number): void {
    if (!this.#available || this.#confirming) return;
    if (now - this.#lastAnswerAt < this.#silenceMs) {
      // Others are answered, but a request is far past the time within which a working
      // broker answers it (a fetch: its wait; a produce: its timeout): its connection died
      // without a word (a relay or NAT gone, TCP backing off after a partition), and would hold
      // it until the request timeout (15 s). The connections are renewed; it fails and is made
      // again. (Unless every request takes about as long: then the cluster is slow.)
      const usual = SLOW_FACTOR * this.#usual.ms;
      for (const w of this.#waiting) {
        // (Read only here, when a request is late: known by then.)
        const bound = typeof w.boundMs === "number" ? w.boundMs : w.boundMs();
        const stuck = Math.max(bound + STUCK_FACTOR * this.#silenceMs, usual);
        if (w.expectMs === 0 && w.brokers && now - w.since >= this.#silenceMs) {
          this.#askBrokers(w.brokers(), now);
        }
        if (bound === 0 || now - w.since < stuck) continue;
        this.#waiting.delete(w);
        log.warn("Kafka: a request waited {ms} ms while others were answered: reconnecting", {
          ms: now - w.since,
        });
        this.#onSilence();
        return;
      }
      return;
    }
    let late: Waiting | undefined;
    for (const w of this.#waiting) {
      if (now - w.since < w.expectMs + this.#silenceMs) continue;
      late = w;
      if (w.expectMs > 0) break; // a fetch: a working broker answers it at the end of its wait
    }
    if (late === undefined) return;
    const why = `no answer to a request for ${now - late.since} ms`;
    const idle = this.#heardAsking || now - this.#lastAnswerAt >= IDLE_GAP * this.#silenceMs;
    if (late.expectMs === 0 && idle) {
      // A produce late while nothing was heard for long because nothing was due (a quiet
      // member's fetches wait 10 s) may be a slow answer (one waiting for replicas), which a busy
      // client tells by its other answers. Kafka is asked something first, and again each
      // silence while only its questions are answered.
      this.#confirming = true;
      void answersWithin(this.#ask, this.#silenceMs * 2).then((answered) => {
        this.#confirming = false;
        if (answered) [this.#lastAnswerAt, this.#heardAsking] = [Date.now(), true];
        else if (!this.#closed) this.#silent(why);
      });
      return;
    }
    this.#silent(why);
  }

  // A produce late while others are answered may wait on a broker whose host is gone (its
  // packets dropped): the cluster names another leader within seconds, but the produce would
  // wait on the old one's connection for its whole bound. A broker that takes no TCP connection
  // within two silences (a lost SYN is sent again after one) has its connections ended: what
  // waits on them is tried again, on the leader named then. Each broker is asked at most once
  // every two silences; not with a single broker, which no other can stand in for.
  #askBrokers(brokers: readonly string[], now: number): void {
    if (Math.max(this.#brokers.length, this.#clusterSize() ?? 0) < 2) return;
    const waitMs = 2 * this.#silenceMs;
    for (const broker of brokers) {
      if (now - (this.#brokersAsked.get(broker) ?? -Infinity) < waitMs) continue;
      this.#brokersAsked.set(broker, Infinity);
      void anyConnects([broker], waitMs).then((answers) => {
        this.#brokersAsked.set(broker, Date.now());
        if (answers || this.#closed) return;
        this.down(`no connection within ${waitMs} ms while a produce waits on it`, broker);
        this.#dropBroker(broker);
      });
    }
  }

  // No answer within the silence while nothing else was heard: Kafka, or with several brokers
  // maybe one of them, is gone.
  #silent(why: string): void {
    this.#waiting.clear();
    this.#onSilence();
    if (this.#brokers.length < 2) return this.down(why);
    this.#confirming = true;
    void anyConnects(this.#brokers, this.#silenceMs * 2).then((answers) => {
      this.#confirming = false;
      if (!answers) return this.down(why);
      this.#lastAnswerAt = Date.now();
      if (this.#lastAnswerAt - this.#partlySaidAt < FAILING_MS) return;
      this.#partlySaidAt = this.#lastAnswerAt;
      log.warn("Kafka: {why}, but other brokers take connections: a broker is away", { why });
    });
  }

  /** False while the broker is unreachable. */
  get available(): boolean {
    return this.#available;
  }

  /** Calls `listener` whenever {@link available} changes; returns what stops it. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const l of this.#listeners) {
      try {
        l();
      } catch (e) {
        log.error("An availability listener failed: {message}", { message: (e as Error).message });
      }
    }
  }

  /** Aborted when the broker turns unavailable. */
  get signal(): AbortSignal {
    return this.#down.signal;
  }

  /** A connection failed: to `broker` when known. */
  down(why: string, broker?: string): void {
    const now = Date.now();
    this.#lastErrorAt = now;
    if (this.#closed) return;
    if (broker !== undefined) {
      const before = this.#failing.get(broker);
      this.#failing.set(broker, now);
      let recent = 0;
      for (const at of this.#failing.values()) if (now - at < FAILING_MS) recent++;
      const cluster = Math.max(this.#brokers.length, this.#clusterSize() ?? 0);
      if (recent < cluster) {
        if (before === undefined || now - before >= FAILING_MS) {
          log.warn("Kafka broker {broker} is unreachable ({why}); {n} other(s) answer", {
            broker,
            why,
            n: cluster - recent,
          });
        }
        return;
      }
    }
    if (!this.#available) return;
    this.#available = false;
    this.#down.abort(new Error("Kafka is unreachable"));
    log.warn("Kafka is unreachable: {why}", { why });
    this.#changed();
    // Nothing is sent meanwhile and consumers reconnect at their own pace.
    this.#probe ??= setInterval(() => {
      if (this.#available || this.#closed) {
        clearInterval(this.#probe);
        this.#probe = undefined;
      } else if (!this.#probing) {
        this.#probing = true;
        this.#ask().catch(() => {}).finally(() => (this.#probing = false));
      }
    }, 1000);
  }

  /** Whether a connection to `broker` (`host:port`) failed lately, none opening since. */
  failing(broker: string): boolean {
    const at = this.#failing.get(broker);
    return at !== undefined && Date.now() - at < FAILING_MS;
  }

  /** A connection to `broker` (`host:port`) opened. */
  reached(broker: string): void {
    this.#failing.delete(broker);
  }

  /**
   * The broker answered (a fetch, a produce): cheap when nothing changes. An answer within a
   * second of a connection error may be one that was in flight when the broker went, so it does
   * not count.
   */
  up(): void {
    const now = Date.now();
    this.#lastAnswerAt = now;
    this.#heardAsking = false;
    if (this.#available || now - this.#lastErrorAt < 1000) return;
    this.#available = true;
    this.#failing.clear();
    this.#down = new AbortController();
    log.info("Kafka answers again");
    this.#changed();
  }

  /** Stops asking. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#probe);
    clearTimeout(this.#watch);
    this.#waiting.clear();
    this.#listeners.clear();
  }
}

/** How long a leader's host has to take a connection after a failure (see {@link leaderAnswers}). */
export const LEADER_CHECK_MS = 1000;
/** The wait before the cluster is asked again for a leader that took no connection. */
export const LEADER_AWAY_WAIT_MS = 250;

/**
 * Whether the leader at `host:port` takes a TCP connection within {@link LEADER_CHECK_MS}: asked
 * by a client about to connect again after a failure. A broker whose host is gone (its packets
 * dropped) stays the named leader until the cluster fences it, and each try to connect to it
 * would wait for the whole connection timeout (3 s) while the cluster names another meanwhile.
 */
export function leaderAnswers(leader: { host: string; port: number }): Promise<boolean> {
  return anyConnects([`${leader.host}:${leader.port}`], LEADER_CHECK_MS);
}

/** Whether `ask` resolves within `timeoutMs`. */
function answersWithin(ask: () => Promise<unknown>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => setImmediate(() => resolve(false)), timeoutMs);
    ask().then(() => resolve(true), () => resolve(false)).finally(() => clearTimeout(timer));
  });
}

/** Whether a TCP connection to any of `brokers` (`host:port`) opens within `timeoutMs`. */
export function anyConnects(brokers: readonly string[], timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let left = brokers.length;
    const sockets = brokers.map((b) => {
      const i = b.lastIndexOf(":");
      const socket = connect({
        host: b.slice(0, i).replace(/^\[|\]$/g, ""),
        port: Number(b.slice(i + 1)),
      });
      socket.on("connect", () => finish(true));
      socket.on("error", () => --left === 0 && finish(false));
      return socket;
    });
    // After a blocked event loop the timer may run before the connections' events that came
    // meanwhile: those are read first (the poll phase comes before setImmediate's).
    const timer = setTimeout(() => setImmediate(() => finish(false)), timeoutMs);
    let done = false;
    function finish(answer: boolean) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      for (const s of sockets) s.destroy();
      resolve(answer);
    }
  });
}
