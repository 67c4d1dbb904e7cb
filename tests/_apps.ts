// Mesh applications as processes for the hostile tests (tests/fixtures/mesh_app.ts with HTTP),
// and the HTTP calls those tests make of them.
import process from "node:process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { EventEnvelope } from "../mod.ts";
import { spawnDeno, spawnProcess } from "./_processes.ts";
import type { DenoProcess } from "./_processes.ts";

/** A running tests/fixtures/mesh_app.ts: its origin, leased topic and HTTP port. */
export interface App extends DenoProcess {
  origin: string;
  topic: string;
  port: number;
}

/**
 * Starts tests/fixtures/mesh_app.ts with HTTP, in the mesh of `mesh` (flags), with `extra`
 * flags, optionally inside a shell command `wrap` (e.g. `ulimit -n 400`); adds it to
 * `processes`.
 */
export async function startApp(
  name: string,
  mesh: string[],
  processes: DenoProcess[],
  { extra = [], wrap }: { extra?: string[]; wrap?: string } = {},
): Promise<App> {
  const args = [
    `-Dapplication.name=${name}`,
    "-Dserver.port=0",
    "-Dmandatory.health.dependencies=cloud.connector.health",
    ...mesh,
    ...extra,
  ];
  const file = fileURLToPath(new URL("./fixtures/mesh_app.ts", import.meta.url));
  const p = wrap === undefined ? spawnDeno("tests/fixtures/mesh_app.ts", args) : spawnProcess(
    "bash",
    // Deno rewrites a child's arguments that equal its own path, hence the path inside the script.
    ["-c", `${wrap} && exec '${process.execPath}' run -A "$@"`, name, file, ...args],
    name,
  );
  processes.push(p);
  const port = Number(/^HTTP (\d+)/.exec(await p.waitFor(/^HTTP \d+/))![1]);
  const [, origin, topic] = /^JOINED (\w+) (\S+)/.exec(await p.waitFor(/^JOINED /))!;
  return { ...p, origin, topic, port };
}

/** POSTs an envelope (or raw bytes) to `/api/event`; the status and the reply. */
export function postEvent(
  port: number,
  e: EventEnvelope | Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: number; reply: EventEnvelope | string }> {
  return fetch(`http://127.0.0.1:${port}/api/event`, {
    method: "POST",
    body: (e instanceof EventEnvelope ? e.toBytes() : e) as BodyInit,
    headers: { "content-type": "application/octet-stream", ...headers },
  }).then(async (res) => {
    const bytes = new Uint8Array(await res.arrayBuffer());
    const isEnvelope = res.headers.get("content-type")?.startsWith("application/octet-stream");
    return {
      status: res.status,
      reply: isEnvelope ? EventEnvelope.fromBytes(bytes) : new TextDecoder().decode(bytes),
    };
  });
}

/** Whether the application at `port` answers its liveness probe. */
export async function alive(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/livenessprobe`);
  await res.body?.cancel();
  return res.status === 200;
}

/** A process's resident memory, in MB (VmRSS from /proc). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}
