/**
 * The monitor's live dashboard: the state it shows (monitors, applications with their leases,
 * routes and rates, recent joins and leaves) and the server-sent event stream that pushes it to
 * each open page whenever it changes. The page itself is in `dashboard_page.ts`.
 *
 * @module
 */
import type { ConnectionInfo, LeaseTable } from "./lease_table.ts";
import { AppStats } from "./app_stats.ts";
import { statsMessages } from "./control.ts";
import type { MonitorMessage } from "./control.ts";
import type { AppReport } from "../protocol/report.ts";
import { STATS_INTERVAL_MS } from "../protocol/report.ts";

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

/** A join or a leave, as the dashboard lists them. */
export interface MeshEvent {
  /** When this monitor saw it (ISO-8601). */
  at: string;
  /** A lease granted, or a connection removed. */
  kind: "join" | "leave";
  /** The instance's origin id. */
  origin: string;
  /** Its application name. */
  name: string;
  /** Its application version. */
  version: string;
  /** The lease for a join, the reason for a leave. */
  detail: string;
}

/** A monitor as the dashboard shows it. */
export interface MonitorRow {
  /** Its origin id. */
  origin: string;
  /** Its version. */
  version: string;
  /** When it started (ISO-8601). */
  started: string;
  /** When its last `alive` arrived (ISO-8601). */
  lastSeen: string;
  /** Whether it is the monitor serving the page. */
  me: boolean;
}

/** An application as the dashboard shows it. */
export interface AppRow {
  /** Its origin id. */
  origin: string;
  /** Its application name. */
  name: string;
  /** Its application version. */
  version: string;
  /** What it said it is (`APP`, or a Java instance's type). */
  type: string;
  /** Its closed user group. */
  group: number;
  /** Its virtual topic, once leased. */
  lease: string | null;
  /** The monitor it is connected through. */
  monitor: string;
  /** When it started (its own report), else when its connection opened (ISO-8601). */
  started: string;
  /** Public routes, when it reports them (minimesh applications do, Java ones do not). */
  routes: string[] | null;
  /** Events per second its functions handled, between its last two reports. */
  rate: number | null;
  /** Of those, the ones that failed, per second. */
  errorRate: number | null;
  /** Events its functions handled since it started. */
  events: number | null;
  /** Of those, the ones that failed. */
  errors: number | null;
}

/** Everything the page shows. */
export interface DashboardState {
  /** The server's clock (ISO-8601): the page counts uptimes from it. */
  now: string;
  /** The monitor serving it. */
  monitor: { origin: string; name: string; version: string };
  /** The monitors it knows, itself included, by origin. */
  monitors: MonitorRow[];
  /** The applications of the mesh, by name, version and origin. */
  apps: AppRow[];
  /** The latest joins and leaves, oldest first. */
  events: MeshEvent[];
}

/** The inputs of {@link dashboardState}. */
export interface DashboardInputs {
  monitor: { origin: string; name: string; version: string };
  monitors: Map<string, { lastSeen: number; version: string; started: string }>;
  connections: ConnectionInfo[];
  stats: AppStats;
  events: readonly MeshEvent[];
}

/** The most routes a row shows, and the longest name shown whole: every push carries them. */
export const MAX_SHOWN_ROUTES = 50;
const MAX_SHOWN_NAME = 80;

// An application's routes as its row shows them: the first ones, names cut, and how many more.
function shownRoutes(routes: string[]): string[] {
  const shown = routes.slice(0, MAX_SHOWN_ROUTES)
    .map((r) => r.length > MAX_SHOWN_NAME ? `${r.slice(0, MAX_SHOWN_NAME - 1)}…` : r);
  if (routes.length > MAX_SHOWN_ROUTES) shown.push(`+${routes.length - MAX_SHOWN_ROUTES} more`);
  return shown;
}

/** The state of the dashboard, applications sorted by name, version and origin. */
export function dashboardState(i: DashboardInputs, now: number = Date.now()): DashboardState {
  const apps = i.connections.map((c): AppRow => {
    const s = i.stats.get(c.origin);
    return {
      origin: c.origin,
      name: c.name,
      version: c.version,
      type: c.type,
      group: c.group,
      lease: c.topic ?? null,
      monitor: c.monitor,
      started: s?.started ?? c.created,
      routes: s === undefined ? null : shownRoutes(s.routes),
      rate: s?.rate ?? null,
      errorRate: s?.errorRate ?? null,
      events: s?.events ?? null,
      errors: s?.errors ?? null,
    };
  }).sort((a, b) =>
    `${a.name}\0${a.version}\0${a.origin}` < `${b.name}\0${b.version}\0${b.origin}` ? -1 : 1
  );
  const monitors = [...i.monitors].sort(([a], [b]) => a < b ? -1 : 1)
    .map(([origin, m]): MonitorRow => ({
      origin,
      version: m.version,
      started: m.started,
      lastSeen: new Date(m.lastSeen).toISOString(),
      me: origin === i.monitor.origin,
    }));
  return {
    now: new Date(now).toISOString(),
    monitor: i.monitor,
    monitors,
    apps,
    events: [...i.events],
  };
}

interface Viewer {
  controller: ReadableStreamDefaultController<Uint8Array>;
  client: string | undefined;
}

/**
 * The pages watching this monitor: `stream()` answers `GET /dashboard/events`; `changed()`
 * pushes the new state to every page (at most every 100 ms); `record()` adds a join or a leave.
 */
export class DashboardFeed {
  readonly #state: () => DashboardState;
  readonly #viewers = new Set<Viewer>();
  readonly #events: MeshEvent[] = [];
  readonly #encoder = new TextEncoder();
  #push: ReturnType<typeof setTimeout> | undefined;
  #pushDue = 0;
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  /** A feed of the states `state` builds. */
  constructor(state: () => DashboardState) {
    this.#state = state;
  }

  /** The latest joins and leaves, oldest first. */
  get events(): readonly MeshEvent[] {
    return this.#events;
  }

  /** The state as it is now. */
  state(): DashboardState {
    return this.#state();
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
      this.#broadcast(`data: ${JSON.stringify(this.#state())}\n\n`);
    }, within);
  }

  /**
   * A server-sent event stream of the state, the current one first, for a page at the address
   * `client`; 503 when too many are open, or 429 when that client has its share open.
   */
  stream(client?: string): Response {
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
        viewer = { controller, client };
        this.#viewers.add(viewer);
        this.#heartbeat ??= setInterval(() => this.#broadcast(": ping\n\n"), HEARTBEAT_MS);
        this.#send(viewer, `retry: 1000\ndata: ${JSON.stringify(this.#state())}\n\n`);
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
  }
}

/** One monitor's dashboard: its feed, and the figures the mesh's applications report. */
export class MonitorDashboard {
  readonly #me: string;
  readonly #table: LeaseTable;
  readonly #stats = new AppStats();
  readonly #feed: DashboardFeed;
  #lastShare = 0;

  /**
   * @param monitor The monitor it shows.
   * @param monitors The monitors it knows.
   * @param table Its table of connections.
   */
  constructor(
    monitor: { origin: string; name: string; version: string },
    monitors: DashboardInputs["monitors"],
    table: LeaseTable,
  ) {
    this.#me = monitor.origin;
    this.#table = table;
    this.#feed = new DashboardFeed(() =>
      dashboardState({
        monitor,
        monitors,
        connections: table.connections(),
        stats: this.#stats,
        events: this.#feed.events,
      })
    );
  }

  /** What the pages show now. */
  state(): DashboardState {
    return this.#feed.state();
  }

  /** The pages' stream (see {@link DashboardFeed.stream}). */
  stream(client?: string): Response {
    return this.#feed.stream(client);
  }

  /** Ends every page's stream. */
  close(): void {
    this.#feed.close();
  }

  /** The state changed: the pages get it within `within` ms. */
  changed(within?: number): void {
    this.#feed.changed(within);
  }

  /** Joins this monitor saw since it started. */
  joins = 0;
  /** Leaves this monitor saw since it started. */
  leaves = 0;

  /** A join or a leave, listed on the pages. */
  record(kind: "join" | "leave", origin: string, c: ConnectionInfo | undefined, detail: string) {
    if (kind === "join") this.joins++;
    else this.leaves++;
    this.#feed.record({
      at: new Date().toISOString(),
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
    this.#stats.own(origin, report);
    this.#feed.changed(FIGURES_DELAY_MS);
  }

  /** Another monitor's share: only what an application's own monitor says of it is taken. */
  shared(monitor: string, apps: { origin: string; report: AppReport }[]): void {
    if (monitor === this.#me) return;
    for (const { origin, report } of apps) {
      if (this.#table.connection(origin)?.monitor === monitor) this.#stats.update(origin, report);
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
