// Which instance of a route the next event goes to.
//
// Taking turns per event split every batch: the 64 requests one turn of the event loop sent went
// out as N produce batches of 64/N, each instance fetched N times as often, and two instances
// served 0.58x (four 0.34x) of what one did (bench/sharing_bench.ts). So the events of one turn
// stay together on one instance, and turns take turns. Except where that would make them wait:
// a fan-out (a fork-and-join, `Promise.all` of requests) to handlers that take time should run on
// all instances at once. So a route whose requests do not usually end within FAST_MS (or that
// has no figure yet) is balanced by load instead: an event goes to the instance with the
// fewest requests waiting on it (and events sent to it this turn), ties taken in turn (the last
// chosen first). The batch that a batch of replies from one instance sets off still goes whole to
// that instance, the least loaded then.

/** Round trips up to this (ms) keep a turn's events on one instance: splitting costs more. */
export const FAST_MS = 10;

/** What the balancer knows of the instances and the routes. */
export interface Loads {
  /** How many requests wait on replies from `origin`. */
  waiting(origin: string): number;
  /** How long requests to `route` usually take (ms), 0 while not known. */
  usualTime(route: string): number;
}

interface Choice {
  /** The instance chosen last, and in which turn. */
  last: string;
  turn: number;
  /** Where the next turn (or tie) starts. */
  next: number;
}

/** Picks instances of routes, keeping a turn's events together where that costs no waiting. */
export class Balancer {
  readonly #loads: Loads;
  // Events sent this turn per instance that no reply will count down (they are not requests).
  readonly #sentThisTurn = new Map<string, number>();
  // A route's instances (the routing table's list, new when they change) -> its last choice.
  // Lists the table dropped go with it.
  readonly #choices = new WeakMap<readonly string[], Choice>();
  #turn = 0;
  #turnEnds = false;

  constructor(loads: Loads) {
    this.#loads = loads;
  }

  #load(origin: string): number {
    return this.#loads.waiting(origin) + (this.#sentThisTurn.get(origin) ?? 0);
  }

  /**
   * The instance to send to of `route`'s `origins` (the routing table's list, kept while they do
   * not change), never `except` (this instance); undefined when there is none. `request`: a reply
   * will count the event down (`waiting` counts it from when it is sent).
   */
  pick(
    route: string,
    origins: readonly string[],
    except: string,
    request: boolean,
  ): string | undefined {
    const len = origins.length;
    // One instance (the common case): nothing to weigh.
    if (len <= 1) return len === 0 || origins[0] === except ? undefined : origins[0];
    if (!this.#turnEnds) {
      this.#turnEnds = true;
      // The send queue flushes a turn's records on a microtask too: the same boundary.
      queueMicrotask(() => {
        this.#turn++;
        this.#turnEnds = false;
        this.#sentThisTurn.clear();
      });
    }
    const usual = this.#loads.usualTime(route);
    const fast = usual > 0 && usual <= FAST_MS;
    let min = Infinity;
    for (const o of origins) if (o !== except) min = Math.min(min, this.#load(o));
    if (min === Infinity) return undefined;
    let s = this.#choices.get(origins);
    if (s === undefined) this.#choices.set(origins, s = { last: "", turn: -1, next: 0 });
    let chosen: string | undefined;
    // (The list is the key: the instance chosen last from it is in it.)
    if (s.turn === this.#turn && (fast || this.#load(s.last) === min)) chosen = s.last;
    else {
      // The next instance in turn (of the least loaded, unless the route is fast).
      for (let k = 0; k < len && chosen === undefined; k++) {
        const o = origins[(s.next + k) % len];
        if (o !== except && (fast || this.#load(o) === min)) {
          chosen = o;
          s.next = (s.next + k + 1) % len;
        }
      }
      s.last = chosen!;
      s.turn = this.#turn;
    }
    if (!request) this.#sentThisTurn.set(chosen!, (this.#sentThisTurn.get(chosen!) ?? 0) + 1);
    return chosen;
  }
}
