/**
 * The monitor's live dashboard: the server-sent event stream that pushes each open page its
 * state (`dashboard_state.ts` builds it) whenever it changes, and the figures behind it (the
 * applications' reports, the callers' reports per route, departures, Kafka as this monitor
 * reaches it). The page itself is in `dashboard_page.ts`.
 *
 * @module
 */
import type { ConnectionInfo, LeaseTable } from "./lease_table.ts";
import { AppStats } from "./app_stats.ts";
import { RouteStats } from "./route_stats.ts";
import { statsMessages } from "./control.ts";
import type { MonitorMessage } from "./control.ts";
import type { AppReport } from "../protocol/report.ts";
import { STATS_INTERVAL_MS } from "../protocol/report.ts";
import { dashboardState, plainReason } from "./dashboard_state.ts";
import type {
  DashboardInputs,
  DashboardState,
  DashboardView,
  DepartedRow,
  MeshEvent,
} from "./dashboard_state.ts";

/** The most pages streaming at once; more get 503 (each costs a connection and a state a push). */
export const MAX_VIEWERS = 32;
/** The most pages one client address streams at once, so that one client cannot take them all. */
export const MAX_VIEWERS_PER_CLIENT = 4;
/** Joins and leaves kept for a page that opens. */
const MAX_EVENTS = 100;
/** A page this many bytes behind (it stopped reading) is dropped rather than buffered. */
const MAX_BEHIND = 4 * 1024 * 1024;
const PUSH_DELAY_MS = 100;
/**
 * The most often reports move the figures on the pages: with hundreds of applications reporting
 * every 5 s, one push a second instead of ten.
 */
export const FIGURES_DELAY_MS = 1000;
const HEARTBEAT_MS = 15_000;
/** How often the health signature is checked while pages are open (Kafka, silent monitors). */
const PULSE_MS = 1000;
/** Departed applications are shown this long, at most this many. */
export const DEPARTED_MS = 10 * 60_000;
export const MAX_DEPARTED = 100;

interface Viewer {
  controller: ReadableStreamDefaultController<Uint8Array>;
  client: string | undefined;
  view: DashboardView;
}

/** A page's view from the query of its stream (`?routes=<filter>&app=<name>`). */
export function viewOf(url: string): DashboardView {
  const q = new URL(url, "http://x").searchParams;
  const view: DashboardView = {};
  const routes = q.get("routes");
  const app = q.get("app");
  if (routes) view.routes = routes.slice(0, 100);
  if (app) view.app = app.slice(0, 200);
  return view;
}

/**
 * The pages watching this monitor: `stream()` answers `GET /dashboard/events`; `changed()`
 * pushes the new state to every page (at most every 100 ms); `record()` adds a join or a leave.
 */
export class DashboardFeed {
  readonly #state: (view: DashboardView) => DashboardState;
  readonly #pulse: () => string;
  #pulseTimer: ReturnType<typeof setInterval> | undefined;
  #lastPulse = "";
  readonly #viewers = new Set<Viewer>();
  readonly #events: MeshEvent[] = [];
  readonly #encoder = new TextEncoder();
  #push: ReturnType<typeof setTimeout> | undefined;
  #pushDue = 0;
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  /**
   * A feed of the states `state` builds for a view. While pages are open, `pulse` is read every
   * second and a change of what it returns pushes at once (health that changes with no event,
   * such as Kafka becoming unreachable).
   */
  constructor(state: (view: DashboardView) => DashboardState, pulse: () => string = () => "") {
    this.#state = state;
    this.#pulse = pulse;
  }

  /** The latest joins and leaves, oldest first. */
  get events(): readonly MeshEvent[] {
    return this.#events;
  }

  /** The state as it is now, for `view`. */
  state(view: DashboardView = {}): DashboardState {
    return this.#state(view);
  }

  /** Pages streaming now. */
  get viewers(): number {
    return this.#viewers.size;
  }

  /** Adds a join or a leave (the oldest goes beyond 100) and pushes. */
  record(event: MeshEvent): void {
    this.#events.push(event);
    if (this.#events.length > MAX_EVENTS) this.#events.shift();
    this.changed();
  }

  /**
   * Pushes the state to every page within `within` ms: 100 by default (joins and leaves, changes
   * within it go as one), longer for figures that change all the time (the applications'
   * reports, see {@link FIGURES_DELAY_MS}). A sooner push replaces a later one.
   */
  changed(within: number = PUSH_DELAY_MS): void {
    if (this.#viewers.size === 0) return;
    const due = Date.now() + within;
    if (this.#push !== undefined && this.#pushDue <= due) return;
    clearTimeout(this.#push);
    this.#pushDue = due;
    this.#push = setTimeout(() => {
      this.#push = undefined;
      this.#pushStates();
    }, within);
  }

  /**
   * A server-sent event stream of the state, the current one first, for a page at the address
   * `client`; 503 when too many are open, or 429 when that client has its share open.
   */
  stream(client?: string, view: DashboardView = {}): Response {
    if (this.#viewers.size >= MAX_VIEWERS) {
      return Response.json(
        { type: "error", status: 503, message: `Too many dashboards open (${MAX_VIEWERS})` },
        { status: 503, headers: { "retry-after": "5" } },
      );
    }
    let mine = 0;
    if (client !== undefined) { for (const v of this.#viewers) if (v.client === client) mine++; }
    if (mine >= MAX_VIEWERS_PER_CLIENT) {
      return Response.json(
        {
          type: "error",
          status: 429,
          message: `Too many dashboards open from one client (${MAX_VIEWERS_PER_CLIENT})`,
        },
        { status: 429, headers: { "retry-after": "5" } },
      );
    }
    let viewer: Viewer;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        viewer = { controller, client, view };
        this.#viewers.add(viewer);
        this.#heartbeat ??= setInterval(() => this.#broadcast(": ping\n\n"), HEARTBEAT_MS);
        this.#lastPulse = this.#pulse();
        this.#pulseTimer ??= setInterval(() => {
          const now = this.#pulse();
          if (now !== this.#lastPulse) this.changed(0);
          this.#lastPulse = now;
        }, PULSE_MS);
        this.#send(viewer, `retry: 1000\ndata: ${JSON.stringify(this.#state(view))}\n\n`);
      },
      cancel: () => this.#remove(viewer),
    }, { highWaterMark: MAX_BEHIND, size: (chunk) => chunk.byteLength });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  }

  /** Ends every stream (the monitor stops). */
  close(): void {
    clearTimeout(this.#push);
    this.#push = undefined;
    for (const v of [...this.#viewers]) {
      this.#remove(v);
      try {
        v.controller.close();
      } catch { /* already closed */ }
    }
  }

  #broadcast(text: string): void {
    for (const v of [...this.#viewers]) this.#send(v, text);
  }

  // Each page its view's state; pages with the same view share one.
  #pushStates(): void {
    const built = new Map<string, string>();
    for (const v of [...this.#viewers]) {
      const key = `${v.view.routes ?? ""}\0${v.view.app ?? ""}`;
      let text = built.get(key);
      if (text === undefined) {
        built.set(key, text = `data: ${JSON.stringify(this.#state(v.view))}\n\n`);
      }
      this.#send(v, text);
    }
  }

  // A page that stopped reading is dropped: its backlog would otherwise grow without bound.
  #send(v: Viewer, text: string): void {
    if ((v.controller.desiredSize ?? 0) <= 0) {
      this.#remove(v);
      try {
        v.controller.error(new Error("dashboard viewer too slow"));
      } catch { /* already closed */ }
      return;
    }
    v.controller.enqueue(this.#encoder.encode(text));
  }

  #remove(v: Viewer): void {
    this.#viewers.delete(v);
    if (this.#viewers.size > 0) return;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    clearInterval(this.#pulseTimer);
    this.#pulseTimer = undefined;
  }
}

/** What a {@link MonitorDashboard} reads of its monitor besides the table. */
export interface DashboardSources {
  /** Whether its Kafka client reaches the broker, and the brokers. */
  kafka(): { up: boolean; brokers: string };
  /** How often monitors say `alive` (ms). */
  aliveMs: number;
  /** The address of one of its own sessions. */
  addressOf(origin: string): string | undefined;
}

/** One monitor's dashboard: its feed, and the figures the mesh's applications report. */
export class MonitorDashboard {
  readonly #me: string;
  readonly #table: LeaseTable;
  readonly #stats = new AppStats();
  readonly #calls = new RouteStats();
  readonly #departed: DepartedRow[] = [];
  readonly #feed: DashboardFeed;
  readonly #sources: DashboardSources;
  #kafka = { up: true, since: new Date().toISOString() };
  #lastShare = 0;
  /** Joins this monitor saw since it started. */
  joins = 0;
  /** Leaves this monitor saw since it started. */
  leaves = 0;

  /**
   * @param monitor The monitor it shows.
   * @param monitors The monitors it knows.
   * @param table Its table of connections.
   * @param sources What else it reads of the monitor.
   */
  constructor(
    monitor: { origin: string; name: string; version: string },
    monitors: DashboardInputs["monitors"],
    table: LeaseTable,
    sources: DashboardSources,
  ) {
    this.#me = monitor.origin;
    this.#table = table;
    this.#sources = sources;
    this.#feed = new DashboardFeed(
      (view) =>
        dashboardState({
          monitor,
          monitors,
          aliveMs: sources.aliveMs,
          connections: table.connections(),
          stats: this.#stats,
          calls: this.#calls,
          kafka: { ...this.#kafkaNow(), brokers: sources.kafka().brokers },
          departed: this.#recentDepartures(),
          events: this.#feed.events,
          addressOf: sources.addressOf,
        }, view),
      () => {
        const now = Date.now();
        const silent = [...monitors].filter(([, m]) => now - m.lastSeen > 3 * sources.aliveMs)
          .map(([o]) => o);
        return `${this.#kafkaNow().up}|${silent.join(",")}`;
      },
    );
  }

  // Kafka now, and since when it has been so.
  #kafkaNow(): { up: boolean; since: string } {
    const up = this.#sources.kafka().up;
    if (up !== this.#kafka.up) this.#kafka = { up, since: new Date().toISOString() };
    return this.#kafka;
  }

  #recentDepartures(now = Date.now()): DepartedRow[] {
    while (
      this.#departed.length > 0 && now - Date.parse(this.#departed[0].at) > DEPARTED_MS
    ) this.#departed.shift();
    return this.#departed;
  }

  /** What a page with `view` shows now. */
  state(view: DashboardView = {}): DashboardState {
    return this.#feed.state(view);
  }

  /** The pages' stream (see {@link DashboardFeed.stream}). */
  stream(client?: string, view?: DashboardView): Response {
    return this.#feed.stream(client, view);
  }

  /** Ends every page's stream. */
  close(): void {
    this.#feed.close();
  }

  /** The state changed: the pages get it within `within` ms. */
  changed(within?: number): void {
    this.#feed.changed(within);
  }

  /**
   * A join or a leave, listed on the pages; an application that leaves stays listed as
   * departed, with its reason, for ten minutes (or until it joins again).
   */
  record(kind: "join" | "leave", origin: string, c: ConnectionInfo | undefined, detail: string) {
    const at = new Date().toISOString();
    const gone = this.#departed.findIndex((d) => d.origin === origin);
    if (gone >= 0) this.#departed.splice(gone, 1);
    if (kind === "join") this.joins++;
    else {
      this.leaves++;
      this.#departed.push({
        origin,
        name: c?.name ?? "",
        version: c?.version ?? "",
        lease: c?.topic ?? null,
        at,
        reason: detail,
        plain: plainReason(detail),
      });
      if (this.#departed.length > MAX_DEPARTED) this.#departed.shift();
    }
    this.#feed.record({
      at,
      kind,
      origin,
      name: c?.name ?? "",
      version: c?.version ?? "",
      detail,
    });
  }

  /**
   * A report of one of this monitor's sessions; an origin not in the table (yet) is ignored,
   * so what is kept is bounded by the table.
   */
  report(origin: string, report: AppReport): void {
    if (this.#table.connection(origin)?.monitor !== this.#me) return;
    const host = this.#sources.addressOf(origin);
    if (host === undefined) delete report.host;
    else report.host = host;
    this.#stats.own(origin, report);
    if (report.calls !== undefined) this.#calls.add(origin, report.calls.routes, report.calls.ms);
    this.#feed.changed(FIGURES_DELAY_MS);
  }

  /** Another monitor's share: only what an application's own monitor says of it is taken. */
  shared(monitor: string, apps: { origin: string; report: AppReport }[]): void {
    if (monitor === this.#me) return;
    for (const { origin, report } of apps) {
      if (this.#table.connection(origin)?.monitor !== monitor) continue;
      this.#stats.update(origin, report);
      if (report.calls !== undefined) {
        this.#calls.add(origin, report.calls.routes, report.calls.ms);
      }
    }
    this.#feed.changed(FIGURES_DELAY_MS);
  }

  /** A monitor started: the next share carries every application's routes. */
  shareAllRoutes(): void {
    this.#stats.shareAllRoutes();
  }

  /**
   * Every {@link STATS_INTERVAL_MS}: what the sessions `joined` here reported, for the other
   * monitors (routes only when they changed, or a monitor started).
   */
  share(now: number, joined: string[]): MonitorMessage[] {
    if (now - this.#lastShare < STATS_INTERVAL_MS) return [];
    this.#lastShare = now;
    const apps = this.#stats.takeShare(
      joined,
      new Set(this.#table.connections().map((c) => c.origin)),
    );
    return statsMessages(this.#me, apps);
  }
}
