// Helpers for presence tests: real monitor processes and scripted websocket clients.
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { EventEnvelope } from "../mod.ts";
import { newOriginId } from "../bus/route.ts";

export const BROKERS = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";
const MAIN = fileURLToPath(new URL("../presence/main.ts", import.meta.url));

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

export interface MonitorProcess {
  port: number;
  origin: string;
  proc: ChildProcess;
  logs: string[];
  /** Resolves with the first log line (seen so far or later) matching `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  get(path: string): Promise<{ status: number; body: unknown }>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `presence/main.ts` on a free port and resolves once it accepts applications. */
export async function startMonitor(args: string[]): Promise<MonitorProcess> {
  const proc = spawn(process.execPath, [
    "run",
    "-A",
    MAIN,
    "-Dserver.port=0",
    "-Dserver.host=127.0.0.1",
    `-Dbootstrap.servers=${BROKERS}`,
    "-Dlog.level=debug",
    ...args,
  ], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  const logs: string[] = [];
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  let exited = false;
  const onData = (chunk: Uint8Array) => {
    for (const line of new TextDecoder().decode(chunk).split("\n")) {
      if (!line.trim()) continue;
      logs.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  proc.stdout!.on("data", onData);
  proc.stderr!.on("data", onData);
  const exitedPromise = new Promise<void>((r) =>
    proc.on("exit", (code, signal) => {
      exited = true;
      // Whoever waits for a log line will not get it now.
      for (const w of waiters.splice(0)) w.resolve(`EXITED ${code ?? signal}`);
      r();
    })
  );
  const waitFor = (re: RegExp, timeoutMs = 20_000) => {
    const seen = logs.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.findIndex((w) => w.re === re), 1);
        reject(new Error(`no log line ${re} in ${timeoutMs} ms; logs:\n${logs.join("\n")}`));
      }, timeoutMs);
      waiters.push({
        re,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  };
  const expect = async (re: RegExp) => {
    const line = await waitFor(re);
    if (line.startsWith("EXITED")) {
      throw new Error(`presence monitor ${line.toLowerCase()}; logs:\n${logs.join("\n")}`);
    }
    return line;
  };
  const portLine = await expect(/Websocket server running on port \d+/);
  const port = Number(/port (\d+)/.exec(portLine)![1]);
  const readyLine = await expect(/Presence monitor \w+ ready/);
  const origin = /monitor (\w+) ready/.exec(readyLine)![1];
  return {
    port,
    origin,
    proc,
    logs,
    waitFor,
    async get(path) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch { /* plain text */ }
      return { status: res.status, body };
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (!exited) proc.kill(signal);
      await exitedPromise;
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
  } = {},
): Client {
  const origin = options.origin ?? newOriginId();
  const ws = new WebSocket(
    `ws://127.0.0.1:${port}${options.path ?? `/ws/presence/${origin}`}`,
  );
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
