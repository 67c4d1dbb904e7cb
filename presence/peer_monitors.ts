/**
 * The monitors one monitor knows of, from their `alive` and `handover` messages on partition 0
 * (Java monitors are added by java_peers.ts): which are alive, which stopped gracefully, and
 * which fell silent, so that what they held is released.
 *
 * @module
 */
import { logger } from "../bus/_log.ts";
import { JAVA_MONITOR_SILENCE_MS } from "./java_monitor.ts";
import type { KnownMonitor } from "./control.ts";

const log = logger("presence");

/** The monitors of the mesh as one of them knows them. */
export class PeerMonitors {
  /** Origin → what is known of it, this monitor included. */
  readonly known: Map<string, KnownMonitor> = new Map();
  readonly #me: string;
  readonly #aliveMs: number;
  readonly #graceMs: number;
  readonly #changed: () => void;
  /** Monitors that stopped gracefully → when what they still hold is released (ms). */
  readonly #handedOver = new Map<string, number>();

  /**
   * @param me This monitor's origin.
   * @param aliveInterval Seconds between `alive` messages (`presence.alive.interval`).
   * @param handoverGrace Seconds a stopped monitor's sessions keep their leases.
   * @param changed Called when the list changes (the dashboard shows it).
   */
  constructor(me: string, aliveInterval: number, handoverGrace: number, changed: () => void) {
    this.#me = me;
    this.#aliveMs = aliveInterval * 1000;
    this.#graceMs = handoverGrace * 1000;
    this.#changed = changed;
  }

  /** A monitor's `alive` (this one's own included). */
  alive(msg: { monitor: string; version: string; started: string }): void {
    const known = this.known.get(msg.monitor);
    const now = Date.now();
    if (msg.monitor === this.#me && known !== undefined && !this.hearsItself(now)) {
      // Our own path through Kafka is back: the peers were as unheard as we were, so each gets
      // a whole silence window from now to speak before it may be expired.
      log.info("Hearing this monitor's own alive messages again after {s} s", {
        s: Math.round((now - known.lastSeen) / 1000),
      });
      for (const m of this.known.values()) m.lastSeen = Math.max(m.lastSeen, now);
    }
    this.known.set(msg.monitor, { lastSeen: now, version: msg.version, started: msg.started });
    if (known === undefined) {
      this.#changed();
      log.info(
        msg.monitor === this.#me
          ? "Registered monitor (me) {origin}"
          : "Registered monitor (peer) {origin}",
        { origin: msg.monitor },
      );
    }
  }

  /**
   * A monitor stopped gracefully (it holds `held` sessions): its applications reconnect
   * elsewhere, keeping their leases; what it still holds after the grace period is released
   * (by whichever monitor is first: the second release finds nothing left).
   */
  handover(monitor: string, held: number): void {
    if (monitor === this.#me) return;
    this.known.delete(monitor);
    log.info("Monitor {origin} is stopping: its {n} session(s) may reconnect here", {
      origin: monitor,
      n: held,
    });
    this.#handedOver.set(monitor, Date.now() + this.#graceMs);
  }

  /**
   * Whether this monitor's own alive messages come back through service.monitor in time (two
   * intervals and a second): the proof that what it hears of its peers is current.
   */
  hearsItself(now: number): boolean {
    const me = this.known.get(this.#me);
    return me !== undefined && now - me.lastSeen < 2 * this.#aliveMs + 1000;
  }

  /**
   * The monitors whose sessions are to be released now: those handed over whose grace is over,
   * and, when `judging` (Kafka is there and this monitor hears itself: else it cannot tell a
   * dead peer from its own outage), those silent for three intervals (a Java one for a minute).
   * Each is forgotten.
   */
  gone(now: number, judging: boolean): string[] {
    const gone: string[] = [];
    for (const [origin, at] of this.#handedOver) {
      if (now < at) continue;
      this.#handedOver.delete(origin);
      gone.push(origin);
    }
    for (const [origin, m] of this.known) {
      const silence = m.java ? JAVA_MONITOR_SILENCE_MS : 3 * this.#aliveMs;
      if (!judging || origin === this.#me || now - m.lastSeen < silence) continue;
      this.known.delete(origin);
      this.#changed();
      log.warn("Monitor {origin} expired: no alive message for {s} s", {
        origin,
        s: Math.round((now - m.lastSeen) / 1000),
      });
      gone.push(origin);
    }
    return gone;
  }
}
