// Helpers for presence tests: real monitor processes and scripted websocket clients.
import { onLifeCycle } from "./_helpers.ts";
import process from "node:process";
import { request } from "node:https";
import { WebSocket as WsClient } from "ws";
import { EventEnvelope, Platform } from "../mod.ts";
import { connectToCloud } from "../connector/mod.ts";
import type { KafkaConnector, LifeCycleEvent } from "../connector/mod.ts";
import { newOriginId } from "../internal.ts";
import { spawnDeno } from "./_processes.ts";
import type { DenoProcess } from "./_processes.ts";

export const BROKERS = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";

/** Unique topic names for one test, so tests never see each other's leases. */
export function topicsFor(name: string): { monitorTopic: string; prefix: string; args: string[] } {
  const tag = `t${crypto.randomUUID().slice(0, 8)}.${name}`;
  const monitorTopic = `${tag}.service.monitor`;
  const prefix = `${tag}.multiplex`;
  return {
    monitorTopic,
    prefix,
    args: [`-Dmonitor.topic=${monitorTopic}`, `-Dapp.topic.prefix=${prefix}`],
  };
}

/**
 * The flags that make an application join the mesh of the monitor on `port`; `kafka` replaces
 * the `-Dbootstrap.servers` flag (with `-Dcloud.client.properties=...`, say).
 */
export function meshArgs(
  port: number,
  topicArgs: string[],
  kafka = [`-Dbootstrap.servers=${BROKERS}`],
): string[] {
  return [
    ...topicArgs,
    `-Dpresence.url=ws://127.0.0.1:${port}/ws/presence`,
    ...kafka,
    "-Dcloud.connector=kafka",
  ];
}

export interface MonitorProcess extends DenoProcess {
  port: number;
  origin: string;
  get(path: string): Promise<{ status: number; body: unknown }>;
}

/**
 * Starts `presence/main.ts` on a free port and resolves once it accepts applications; `kafka`
 * replaces the `-Dbootstrap.servers` flag.
 */
export async function startMonitor(
  args: string[],
  kafka = [`-Dbootstrap.servers=${BROKERS}`],
): Promise<MonitorProcess> {
  const p = spawnDeno("presence/main.ts", [
    "-Dserver.port=0",
    "-Dserver.host=127.0.0.1",
    ...kafka,
    "-Dlog.level=debug",
    ...args,
  ]);
  const port = Number(
    /port (\d+)/.exec(await p.waitFor(/Websocket server running on port \d+/))![1],
  );
  const origin = /monitor (\w+) ready/.exec(await p.waitFor(/Presence monitor \w+ ready/))![1];
  return {
    ...p,
    port,
    origin,
    async get(path) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch { /* plain text */ }
      return { status: res.status, body };
    },
  };
}

export interface Client {
  origin: string;
  ws: WebSocket;
  /** Resolves with the leased virtual topic. */
  ready: Promise<string>;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  sendEnvelope(e: EventEnvelope): void;
  close(): Promise<void>;
}

/** Connects as an app instance; sends `info` at once unless `info: false`. */
export function connect(
  port: number,
  options: {
    origin?: string;
    name?: string;
    version?: string;
    group?: string;
    info?: boolean;
    path?: string;
    /** false: a client that never answers pings, as a frozen process (the `ws` package's). */
    answerPings?: boolean;
    /** Websocket subprotocols to offer (a mesh token, see protocol/credentials.ts). */
    protocols?: string[];
    /** The identity secret sent in `info` (see protocol/credentials.ts). */
    identity?: string;
    /** Connect with wss:// trusting this CA certificate (PEM text). */
    ca?: string;
    /** The local address to connect from (any of 127.0.0.0/8 on Linux). */
    localAddress?: string;
  } = {},
): Client {
  const origin = options.origin ?? newOriginId();
  const scheme = options.ca === undefined ? "ws" : "wss";
  const url = `${scheme}://127.0.0.1:${port}${options.path ?? `/ws/presence/${origin}`}`;
  const ws = options.answerPings === false || options.ca || options.localAddress
    ? new WsClient(url, options.protocols, {
      autoPong: options.answerPings !== false,
      ca: options.ca,
      localAddress: options.localAddress,
    }) as unknown as WebSocket
    : new WebSocket(url, options.protocols);
  ws.binaryType = "arraybuffer";
  let setReady!: (t: string) => void, failReady!: (e: Error) => void;
  const ready = new Promise<string>((res, rej) => {
    setReady = res;
    failReady = rej;
  });
  ready.catch(() => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.onclose = (e) => {
      failReady(new Error(`closed before ready: ${e.code} ${e.reason}`));
      resolve({ code: e.code, reason: e.reason });
    };
  });
  ws.onerror = () => {};
  ws.onmessage = (m) => {
    if (typeof m.data === "string") return;
    const e = EventEnvelope.fromBytes(new Uint8Array(m.data));
    if (e.to === "ready") setReady(e.headers.topic);
  };
  const sendEnvelope = (e: EventEnvelope) => ws.send(e.toBytes());
  ws.onopen = () => {
    if (options.info === false) return;
    sendEnvelope(
      new EventEnvelope({
        to: "info",
        headers: {
          created: new Date().toISOString(),
          seq: "1",
          name: options.name ?? "test-app",
          version: options.version ?? "1.0.0",
          group: options.group ?? "1",
          type: "APP",
          ...(options.identity ? { identity: options.identity } : {}),
        },
      }),
    );
  };
  return {
    origin,
    ws,
    ready,
    closed,
    sendEnvelope,
    async close() {
      if (ws.readyState <= WebSocket.OPEN) ws.close(1000, "bye");
      await closed;
    },
  };
}

/** Polls `check` every 50 ms until it returns true or `timeoutMs` passes. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * This test process as a mesh member named `name`: `setup` registers its routes before it
 * joins, `listen` hears its life-cycle events from the start. Resolves once it has joined.
 */
export async function meshMember(
  name: string,
  args: string[],
  setup: (platform: Platform) => void = () => {},
  listen?: (e: LifeCycleEvent) => void,
): Promise<{ platform: Platform; connector: KafkaConnector }> {
  const platform = new Platform({
    dir: "/nonexistent",
    // Only the Kafka client under test comes from the environment (see tests/_kafka.ts).
    env: { KAFKA_CLIENT: process.env.KAFKA_CLIENT },
    args: [`-Dapplication.name=${name}`, ...args],
  });
  setup(platform);
  const connector = connectToCloud(platform)!;
  if (listen) onLifeCycle(connector, listen);
  await connector.joined;
  return { platform, connector };
}

/** GET over HTTPS trusting `ca` (PEM text); rejects when the TLS handshake fails. */
export function httpsGet(url: string, ca?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    }).on("error", reject).end();
  });
}
