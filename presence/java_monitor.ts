/**
 * A Java presence monitor on this mesh's partition 0. Java and TypeScript monitors cannot share
 * one lease table yet (issue 17: the Java monitor's RSVP protocol is not spoken here), so a
 * TypeScript monitor that hears one applies none of its messages, says so (error log, /health
 * DOWN) and takes no new applications until it has been silent for a minute, rather than lease a
 * partition the Java monitor may lease too (docs/presence.md).
 *
 * @module
 */
import { headerOf } from "../bus/envelope.ts";
import type { EventEnvelope } from "../bus/envelope.ts";

/** Where a Java monitor writes on partition 0 (the reference's section 5.5). */
const JAVA_MONITOR_ROUTES = new Set([
  "presence.service",
  "presence.housekeeper",
  "topic.controller",
]);
/** A Java monitor says `monitor_alive` every 20 s: three missed, and it is taken for gone. */
export const JAVA_MONITOR_SILENCE_MS = 60_000;

/** What a monitor has heard of Java monitors. */
export class JavaMonitorWatch {
  #heard: { origin: string; lastSeen: number } | undefined;

  /** Whether `e` (a record of partition 0 that is not a TypeScript monitor's) is a Java monitor's. */
  static isJava(e: EventEnvelope): boolean {
    return JAVA_MONITOR_ROUTES.has((e.to ?? "").split("@")[0]);
  }

  /**
   * Records a Java monitor's message.
   *
   * @returns Its origin when this is the first heard (since the last silence), else undefined.
   */
  heard(e: EventEnvelope, now: number = Date.now()): string | undefined {
    // Which monitor wrote it: its heartbeat and download name it `origin`, the lease messages
    // `monitor`; a `put` or `del` names only the application (the body of a put, its monitor).
    const route = (e.to ?? "").split("@")[0];
    const type = headerOf(e.headers, "type");
    const body = e.body as Record<string, unknown> | null;
    const named = route === "topic.controller"
      ? headerOf(e.headers, "monitor")
      : route === "presence.housekeeper" || type === "download"
      ? headerOf(e.headers, "origin")
      : typeof body?.monitor === "string"
      ? body.monitor
      : undefined;
    const first = this.#heard === undefined;
    const origin = (named ?? this.#heard?.origin ?? "unknown").slice(0, 80);
    this.#heard = { origin, lastSeen: now };
    return first ? origin : undefined;
  }

  /** The Java monitor heard within the last minute, if any; forgets one silent for longer. */
  current(now: number = Date.now()): string | undefined {
    const h = this.#heard;
    if (h !== undefined && now - h.lastSeen > JAVA_MONITOR_SILENCE_MS) this.#heard = undefined;
    return this.#heard?.origin;
  }
}
