/**
 * What the dashboard shows, built from the monitor's tables: the mesh's health first (Kafka as
 * this monitor sees it, the monitors, applications whose Kafka is down, departures), then the
 * applications grouped by name, the routes with their providers and their callers' figures, and
 * the latest joins and leaves. One page asks for one view (a route filter, one application's
 * instances): every list is bounded, so a push stays small at hundreds of applications and
 * thousands of routes.
 *
 * @module
 */
import type { ConnectionInfo } from "./lease_table.ts";
import type { AppStats } from "./app_stats.ts";
import type { RouteStats } from "./route_stats.ts";

/** Instance rows a page gets at most (all of them below this, else one application's). */
export const MAX_APP_ROWS = 100;
/** Application groups a page gets at most. */
export const MAX_GROUPS = 300;
/** Route rows a page gets at most (the busiest that match its filter). */
export const MAX_ROUTE_ROWS = 100;
/** Providers listed per route. */
const MAX_PROVIDERS = 10;
/** The most routes a row shows, and the longest name shown whole: every push carries them. */
export const MAX_SHOWN_ROUTES = 50;
const MAX_SHOWN_NAME = 80;

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

/** An application that left, kept for a while with why. */
export interface DepartedRow {
  /** Its origin id. */
  origin: string;
  /** Its application name. */
  name: string;
  /** Its application version. */
  version: string;
  /** The lease it held. */
  lease: string | null;
  /** When it left (ISO-8601). */
  at: string;
  /** The reason as the monitors recorded it. */
  reason: string;
  /** The same in plain language. */
  plain: string;
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
  /** `live`, or `silent` when three `alive` messages are missing. */
  state: "live" | "silent";
}

/** An application instance as the dashboard shows it. */
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
  /** `UP`, `DOWN` (its Kafka client cannot reach the broker), or null when it does not say. */
  health: "UP" | "DOWN" | null;
  /** Its HTTP endpoints (`http://address:port`), when it runs a server and its address is known. */
  http: string | null;
  /** Its rates of the last five minutes, oldest first. */
  history: number[];
}

/** The instances of one application name. */
export interface AppGroup {
  /** The application name. */
  name: string;
  /** Its versions running. */
  versions: string[];
  /** Instances in the mesh. */
  instances: number;
  /** Of those, the ones whose health is DOWN. */
  down: number;
  /** Events per second, all instances. */
  rate: number;
  /** Errors per second, all instances. */
  errorRate: number;
  /** Its rates of the last five minutes, all instances, oldest first. */
  history: number[];
}

/** A route: who serves it, and what its callers see. */
export interface RouteRow {
  /** The route name. */
  route: string;
  /** The applications that serve it, with their instance counts (the first ten). */
  providers: { name: string; instances: number }[];
  /** Instances that serve it in all. */
  instances: number;
  /** Requests a second from its callers (null when none called it in five minutes). */
  rate: number | null;
  /** Of those, failed or timed out, a second. */
  errorRate: number | null;
  /** Median round trip over the last minute (ms). */
  p50: number | null;
  /** 99th percentile of the round trip over the last minute (ms). */
  p99: number | null;
  /** Requests a second in slots of 5 s over the last five minutes. */
  history: number[] | null;
}

/** Kafka, as the monitor serving the page reaches it. */
export interface KafkaState {
  /** Whether its Kafka client reaches the broker. */
  up: boolean;
  /** Since when (ISO-8601). */
  since: string;
  /** The bootstrap brokers. */
  brokers: string;
}

/** The mesh's health, shown first. */
export interface MeshHealth {
  /** Kafka from this monitor. */
  kafka: KafkaState;
  /** Monitors known. */
  monitors: number;
  /** Of those, the silent ones (no `alive`). */
  silentMonitors: number;
  /** Application instances in the mesh. */
  apps: number;
  /** Of those, the ones whose health is DOWN. */
  appsDown: number;
  /** Applications that left in the last minutes (kept greyed). */
  departed: number;
  /** What is wrong, in plain language; empty when nothing is. */
  problems: string[];
}

/** What one page asks to see. */
export interface DashboardView {
  /** Only routes whose name contains this (case-insensitive). */
  routes?: string;
  /** The instances of this application name (when there are too many to list all). */
  app?: string;
}

/** Everything a page shows. */
export interface DashboardState {
  /** The server's clock (ISO-8601): the page counts uptimes from it. */
  now: string;
  /** The monitor serving it. */
  monitor: { origin: string; name: string; version: string };
  /** The mesh's health. */
  health: MeshHealth;
  /** The monitors it knows, itself included, by origin. */
  monitors: MonitorRow[];
  /** The applications by name. */
  groups: AppGroup[];
  /** Instances listed: all of them up to 100, else those of the view's application. */
  apps: AppRow[];
  /** Instances in all. */
  appsTotal: number;
  /** Applications that left recently, the latest first. */
  departed: DepartedRow[];
  /** Routes listed: the busiest that match the view's filter, at most 100. */
  routes: RouteRow[];
  /** Routes that match the filter in all. */
  routesTotal: number;
  /** The view this state was built for. */
  view: DashboardView;
  /** The mesh's event rate and its history (events per second, all applications). */
  mesh: { rate: number; errorRate: number; history: number[] };
  /** The latest joins and leaves, oldest first. */
  events: MeshEvent[];
}

/** The inputs of {@link dashboardState}. */
export interface DashboardInputs {
  monitor: { origin: string; name: string; version: string };
  monitors: Map<string, { lastSeen: number; version: string; started: string }>;
  /** How often monitors say `alive` (ms). */
  aliveMs: number;
  connections: ConnectionInfo[];
  stats: AppStats;
  calls: RouteStats;
  kafka: KafkaState;
  departed: readonly DepartedRow[];
  events: readonly MeshEvent[];
  /** The address an application's connection comes from, when this monitor holds it. */
  addressOf(origin: string): string | undefined;
}

/**
 * A leave's reason in plain language: what an operator should understand from a close code.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { plainReason } from "./dashboard_state.ts";
 * assert.match(plainReason("websocket closed (1006)"), /without a goodbye/);
 * ```
 */
export function plainReason(reason: string): string {
  const code = /websocket closed \((\d{4})/.exec(reason)?.[1];
  switch (code) {
    case "1000":
      return "stopped normally";
    case "1001":
      return "stopped (going away)";
    case "1006":
      return "connection lost without a goodbye: the process was killed or crashed, or the network failed";
    case "1003":
      return "closed by the monitor: it sent something the monitor could not read, or stayed idle";
    case "1008":
      return "refused: its identity was not acceptable";
    case "1009":
      return "closed by the monitor: a message over the size limit";
    case "1011":
      return "closed after an error in the monitor";
    case "1013":
      return "asked to try again later (the monitor was busy or starting)";
    case "4401":
      return "refused: no valid mesh token";
  }
  if (/^monitor \S+ is gone/.test(reason)) {
    return "its monitor stopped answering; it should rejoin through another";
  }
  if (/Java monitor/.test(reason)) return "its Java monitor reported it gone";
  if (/expired|silent|keep-alive/i.test(reason)) return "went silent: no keep-alive in time";
  return reason;
}

// An application's routes as its row shows them: the first ones, names cut, and how many more.
function shownRoutes(routes: string[]): string[] {
  const shown = routes.slice(0, MAX_SHOWN_ROUTES)
    .map((r) => r.length > MAX_SHOWN_NAME ? `${r.slice(0, MAX_SHOWN_NAME - 1)}…` : r);
  if (routes.length > MAX_SHOWN_ROUTES) shown.push(`+${routes.length - MAX_SHOWN_ROUTES} more`);
  return shown;
}

const round = (n: number) => Math.round(n * 10) / 10;

// Histories of unequal length added up, aligned at their ends.
function addHistories(into: number[], h: readonly number[]): void {
  const offset = into.length - h.length;
  for (let i = 0; i < h.length; i++) {
    if (i + offset >= 0) into[i + offset] = round(into[i + offset] + h[i]);
  }
}

const byName = <T extends { name: string }>(a: T, b: T) => a.name < b.name ? -1 : 1;

/** The state a page with `view` shows. */
export function dashboardState(
  i: DashboardInputs,
  view: DashboardView = {},
  now: number = Date.now(),
): DashboardState {
  const rows = i.connections.map((c): AppRow => {
    const s = i.stats.get(c.origin);
    const address = i.addressOf(c.origin) ?? s?.host ?? null;
    const host = address !== null && address.includes(":") ? `[${address}]` : address;
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
      health: s?.kafka === undefined || s.kafka === null ? null : s.kafka ? "UP" : "DOWN",
      http: host !== null && s?.http != null ? `http://${host}:${s.http}` : null,
      history: s?.history ?? [],
    };
  }).sort((a, b) =>
    `${a.name}\0${a.version}\0${a.origin}` < `${b.name}\0${b.version}\0${b.origin}` ? -1 : 1
  );

  const groups = new Map<string, AppGroup>();
  const mesh = { rate: 0, errorRate: 0, history: new Array<number>(60).fill(0) };
  for (const a of rows) {
    let g = groups.get(a.name);
    if (g === undefined) {
      g = {
        name: a.name,
        versions: [],
        instances: 0,
        down: 0,
        rate: 0,
        errorRate: 0,
        history: new Array<number>(60).fill(0),
      };
      groups.set(a.name, g);
    }
    if (!g.versions.includes(a.version)) g.versions.push(a.version);
    g.instances++;
    if (a.health === "DOWN") g.down++;
    g.rate = round(g.rate + (a.rate ?? 0));
    g.errorRate = round(g.errorRate + (a.errorRate ?? 0));
    addHistories(g.history, a.history);
    mesh.rate = round(mesh.rate + (a.rate ?? 0));
    mesh.errorRate = round(mesh.errorRate + (a.errorRate ?? 0));
    addHistories(mesh.history, a.history);
  }

  // Routes: those served (from the applications' reports) and those called.
  const providers = new Map<string, Map<string, number>>();
  for (const c of i.connections) {
    for (const route of i.stats.get(c.origin)?.routes ?? []) {
      let p = providers.get(route);
      if (p === undefined) providers.set(route, p = new Map());
      p.set(c.name, (p.get(c.name) ?? 0) + 1);
    }
  }
  const filter = (view.routes ?? "").slice(0, 100).toLowerCase();
  const names = new Set([...providers.keys(), ...i.calls.routes(now)]);
  const matching = [...names].filter((r) => filter === "" || r.toLowerCase().includes(filter));
  const routes = matching.map((route): RouteRow => {
    const f = i.calls.figures(route, now);
    const p = [...providers.get(route) ?? []].sort(([a], [b]) => a < b ? -1 : 1);
    return {
      route,
      providers: p.slice(0, MAX_PROVIDERS).map(([name, instances]) => ({ name, instances })),
      instances: p.reduce((n, [, k]) => n + k, 0),
      rate: f?.rate ?? null,
      errorRate: f?.errorRate ?? null,
      p50: f?.p50 ?? null,
      p99: f?.p99 ?? null,
      history: f?.history ?? null,
    };
  }).sort((a, b) => (b.rate ?? -1) - (a.rate ?? -1) || (a.route < b.route ? -1 : 1))
    .slice(0, MAX_ROUTE_ROWS);

  const monitors = [...i.monitors].sort(([a], [b]) => a < b ? -1 : 1)
    .map(([origin, m]): MonitorRow => ({
      origin,
      version: m.version,
      started: m.started,
      lastSeen: new Date(m.lastSeen).toISOString(),
      me: origin === i.monitor.origin,
      state: origin === i.monitor.origin || now - m.lastSeen <= 3 * i.aliveMs ? "live" : "silent",
    }));

  const appsDown = rows.filter((a) => a.health === "DOWN").length;
  const silent = monitors.filter((m) => m.state === "silent");
  const problems: string[] = [];
  if (!i.kafka.up) {
    problems.push(
      `Kafka (${i.kafka.brokers}) is unreachable from this monitor: no application can join, ` +
        "and requests between applications fail",
    );
  }
  for (const m of silent) problems.push(`Monitor ${m.origin} is silent: no alive message`);
  if (appsDown > 0) {
    problems.push(`${appsDown} application instance(s) cannot reach Kafka (health DOWN)`);
  }
  if (monitors.length < 2) {
    problems.push("Only one monitor: if it stops, no application can join or rejoin");
  }
  const instances = rows.length <= MAX_APP_ROWS
    ? rows
    : rows.filter((a) => a.name === view.app).slice(0, MAX_APP_ROWS);
  return {
    now: new Date(now).toISOString(),
    // Only these three: the monitor given may be a whole Platform, which no page should see.
    monitor: { origin: i.monitor.origin, name: i.monitor.name, version: i.monitor.version },
    health: {
      kafka: i.kafka,
      monitors: monitors.length,
      silentMonitors: silent.length,
      apps: rows.length,
      appsDown,
      departed: i.departed.length,
      problems,
    },
    monitors,
    groups: [...groups.values()].sort(byName).slice(0, MAX_GROUPS),
    apps: instances,
    appsTotal: rows.length,
    departed: [...i.departed].reverse(),
    routes,
    routesTotal: matching.length,
    view: {
      ...(filter ? { routes: filter } : {}),
      ...(view.app ? { app: view.app.slice(0, 200) } : {}),
    },
    mesh,
    events: [...i.events],
  };
}
