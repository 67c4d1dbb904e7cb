/**
 * Events between instances (docs/wire.md, "Records on Kafka"): an event for a peer is written to
 * the peer's leased partition as one record, or in blocks when it is large; records read from
 * this instance's own partition are checked, reassembled and delivered to local routes. Every
 * record that cannot be delivered is counted and logged, never thrown.
 *
 * @module
 */
import { AppError, RouteNotFoundError } from "../bus/errors.ts";
import { EventEnvelope, peekTags } from "../bus/envelope.ts";
import { logger, throttled } from "../bus/_log.ts";
import { endSpan, hopSpan } from "../bus/telemetry.ts";
import type { Telemetry } from "../bus/telemetry.ts";
import { splitAddress } from "../bus/route.ts";
import { inboxOf, statusOf, telemetryOf, TEMPORARY_INBOX } from "../bus/platform.ts";
import type { Platform } from "../bus/platform.ts";
import { outsideReplyProblem } from "../bus/_outside.ts";
import type { InRecord, KafkaClient, OutRecord } from "../kafka/client.ts";
import { eventRecord, splitVirtualTopic } from "../kafka/records.ts";
import { BlockAssembler, isBlock, MAX_BLOCK, toBlocks } from "./blocks.ts";
import type { BlockLimits } from "./blocks.ts";
import { failSoon } from "../bus/_fail_soon.ts";

const log = logger("connector");
// Whoever can write to a partition chooses how often these happen.
const warn = throttled(log, "warn", 10);
/** How often block sets waiting for more blocks are looked at for expiry (see BlockLimits.ttlMs). */
const EXPIRY_CHECK_MS = 5000;

/** Counters of records that were skipped, by reason. */
export interface ConnectorStats {
  /** Records addressed to another instance. */
  misdirected: number;
  /** Values that are not valid envelopes. */
  undecodable: number;
  /** Invalid or duplicate blocks. */
  badBlocks: number;
  /** Block sets that never completed. */
  expiredBlockSets: number;
  /** Incomplete block sets dropped to stay within `block.max.pending.sets` / `.bytes`. */
  droppedBlockSets: number;
  /** Events for a route this instance no longer serves. */
  unknownRoute: number;
  /** Events refused because their route's queue was full (`route.queue.limit`): 503 busy. */
  busy: number;
  /** Events for a private or system route, which the mesh never delivers. */
  privateRoute: number;
  /** Replies that matched no request waiting on the peer they claim to come from. */
  unmatchedReplies: number;
  /** Events whose `replyTo` is not a public route or another instance's inbox. */
  refusedReplyTo: number;
  /** Requests read after their caller's timeout had passed (this instance was frozen, say). */
  expired: number;
}

/** Records and bytes (of record values) through Kafka. */
export interface Traffic {
  recordsIn: number;
  bytesIn: number;
  recordsOut: number;
  bytesOut: number;
}

/** Carries events to peers over Kafka and delivers the ones that arrive. */
export class Delivery {
  /** What went through Kafka, for /metrics. */
  readonly traffic: Traffic = { recordsIn: 0, bytesIn: 0, recordsOut: 0, bytesOut: 0 };
  /** Skipped-record counters. */
  readonly stats: ConnectorStats = {
    misdirected: 0,
    undecodable: 0,
    badBlocks: 0,
    expiredBlockSets: 0,
    droppedBlockSets: 0,
    unknownRoute: 0,
    busy: 0,
    privateRoute: 0,
    unmatchedReplies: 0,
    refusedReplyTo: 0,
    expired: 0,
  };
  readonly #platform: Platform;
  readonly #kafka: KafkaClient;
  readonly #blocks: BlockAssembler;
  readonly #telemetry: Telemetry;
  readonly #clockSkewMs: number;
  /** Looks for expired block sets while some wait (none idle: no wake-up for nothing). */
  #expiry: ReturnType<typeof setInterval> | undefined;

  /**
   * Delivery for `platform` through `kafka`, holding incomplete block sets within `limits`;
   * a request is dropped when read more than its timeout plus `clockSkewMs` after it was written.
   */
  constructor(platform: Platform, kafka: KafkaClient, limits: BlockLimits, clockSkewMs = 1000) {
    this.#platform = platform;
    this.#clockSkewMs = clockSkewMs;
    this.#telemetry = telemetryOf(platform);
    this.#kafka = kafka;
    this.#blocks = new BlockAssembler(limits);
  }

  /** Writes `event` to the partition of the peer `origin`, leased as `topic`. */
  send(origin: string, topic: string, event: EventEnvelope): Promise<void> {
    const [physical, partition] = splitVirtualTopic(topic);
    // A request of ours: its id gets the peer's token (only its reply can complete it), and if
    // that peer leaves, its caller hears so at once (Peers.remove).
    const cid = event.correlationId;
    if (cid !== undefined && event.replyTo === this.#platform.inboxAddress) {
      event.correlationId = inboxOf(this.#platform).sentTo(cid, origin);
    }
    // A traced event's hop is a span (with an OpenTelemetry SDK): the peer's execution is its child.
    const hop = hopSpan(this.#telemetry, event, origin, topic);
    const bytes = event.toBytes();
    const records: OutRecord[] = bytes.length <= MAX_BLOCK
      ? [eventRecord(physical, partition, origin, bytes)] // encoded once, above
      : toBlocks(event.id, bytes).map((b) => eventRecord(physical, partition, origin, b));
    this.traffic.recordsOut += records.length;
    this.traffic.bytesOut += bytes.length;
    return this.#kafka.send(records).then(() => endSpan(hop), (e) => {
      endSpan(hop, "Mesh unavailable", 503);
      // The client hears that the mesh is unavailable; broker addresses stay in the log.
      log.error("Cannot send to {origin}: {message}", { origin, message: (e as Error).message });
      return failSoon(new AppError(503, "Mesh unavailable", { cause: e }));
    });
  }

  /** Handles one record of this instance's own partition. */
  onRecord(r: InRecord): void {
    this.traffic.recordsIn++;
    this.traffic.bytesIn += r.value.length;
    if (r.headers._event_ === undefined) return;
    const rx = r.headers._rx_;
    const me = this.#platform.origin;
    if (rx !== undefined && rx !== me && !rx.includes("monitor")) {
      this.stats.misdirected++;
      warn("Skipping record {offset}: it belongs to {rx}", { offset: r.offset, rx });
      return;
    }
    let e = this.#decode(r.value, `record ${r.offset}`);
    if (e === undefined) return;
    if (isBlock(e)) {
      const result = this.#blocks.add(e, Date.now());
      if (result.kind === "invalid") {
        this.stats.badBlocks++;
        warn("Skipping block: {reason}", { reason: result.reason });
        return;
      }
      if (result.kind === "partial") {
        this.#expiry ??= setInterval(() => this.expireBlocks(Date.now()), EXPIRY_CHECK_MS);
        for (const [id, got, max] of result.dropped) {
          this.stats.droppedBlockSets++;
          warn("Block set {id} dropped with {got} of {max} blocks: over the pending caps", {
            id,
            got,
            max,
          });
        }
        return;
      }
      e = this.#decode(result.bytes, "reassembled event");
      if (e === undefined) return;
    }
    if (r.timestamp !== undefined && this.#late(e, r.timestamp)) return;
    this.#deliver(e);
  }

  /** Drops block sets that did not complete in time. */
  expireBlocks(now: number): void {
    for (const [id, got, max] of this.#blocks.expire(now)) {
      this.stats.expiredBlockSets++;
      warn("Block set {id} expired with {got} of {max} blocks", { id, got, max });
    }
    if (this.#blocks.pending === 0) this.close();
  }

  /** Stops looking for expired block sets (until a block comes again). */
  close(): void {
    clearInterval(this.#expiry);
    this.#expiry = undefined;
  }

  // A request read after its caller gave up (the `rpc` tag is its timeout; the record's time is
  // when it was written): nobody waits for its reply, and another instance may have run it
  // since (the caller retried), so it does not run late. Clocks of the mesh's hosts may differ
  // by up to the skew allowed.
  #late(e: EventEnvelope, writtenAt: number): boolean {
    const rpc = peekTags(e)?.rpc;
    if (rpc === undefined) return false;
    const late = Date.now() - writtenAt - Number(rpc) - this.#clockSkewMs;
    if (!(late > 0)) return false;
    this.stats.expired++;
    warn("Dropped a request for {to} read {ms} ms after its caller's timeout: it does not run", {
      to: e.to,
      ms: Math.round(late + this.#clockSkewMs),
    });
    return true;
  }

  #deliver(e: EventEnvelope): void {
    const platform = this.#platform;
    const tags = peekTags(e);
    if (tags?.broadcast !== undefined) tags.broadcast = "3";
    const at = e.to?.indexOf("@monitor") ?? -1;
    if (at > 0) e.to = e.to!.slice(0, at);
    const route = e.to === undefined ? undefined : splitAddress(e.to).route;
    if (route === TEMPORARY_INBOX) {
      // A reply counts only for a request of ours still waiting on the peer it went to.
      if (!inboxOf(platform).completeFromPeer(e)) {
        this.stats.unmatchedReplies++;
        log.debug("Dropped a reply {cid} that no request waits for", { cid: e.correlationId });
      }
      return;
    }
    const problem = e.replyTo === undefined ? undefined : outsideReplyProblem(platform, e.replyTo);
    if (problem !== undefined) {
      // Its reply would run a private route or complete someone else's request: nothing runs.
      this.stats.refusedReplyTo++;
      warn("Refused an event from the mesh for {to}: {problem}", { to: e.to, problem });
      return;
    }
    if (route !== undefined && platform.hasRoute(route) && platform.isPrivate(route)) {
      // Private routes are reachable from their own process only; the sender hears 404.
      this.stats.privateRoute++;
      warn("Refused an event from the mesh to the private route {route}", { route });
      e.to = route;
      return this.#notFound(e, new RouteNotFoundError(route));
    }
    try {
      platform.deliverLocal(e);
    } catch (err) {
      if (statusOf(err) === 503) this.stats.busy++;
      else this.stats.unknownRoute++;
      warn("Cannot deliver {to} from the mesh: {message}", {
        to: e.to,
        message: (err as Error).message,
      });
      this.#notFound(e, err as Error);
    }
  }

  // Tells a requester that its event could not be delivered here (404, or 503 when busy).
  #notFound(e: EventEnvelope, err: Error): void {
    if (e.replyTo === undefined || e.to === undefined) return;
    const reply = new EventEnvelope({
      to: e.replyTo,
      correlationId: e.correlationId,
      status: statusOf(err),
      body: err.message,
      tags: e.tags,
    });
    try {
      this.#platform.deliver(reply)?.catch(() => {});
    } catch { /* the caller is gone too */ }
  }

  // An envelope, or undefined (counted and logged) for bytes that are not one.
  #decode(bytes: Uint8Array, what: string): EventEnvelope | undefined {
    try {
      return EventEnvelope.fromBytes(bytes, this.#platform.decodeOptions);
    } catch (err) {
      this.stats.undecodable++;
      warn("Skipping {what}: {message}", { what, message: (err as Error).message });
      return undefined;
    }
  }
}
