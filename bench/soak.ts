/**
 * A soak of the guide's stack: `deno run -A bench/soak.ts [--minutes 10] [--rate 200]`.
 *
 * Starts the demo (`scripts/demo.ts`: the dev broker, two monitors, lambda-example,
 * rest-example) unless rest-example already answers, then sends `GET /api/pojo/mesh/{n}` to
 * rest-example at `--rate` requests a second, open loop (each on time, whatever the earlier ones
 * do), with Deno's `fetch` (it keeps idle connections 90 s). Every 12 s a burst of 64 at once
 * grows its connection pool, so that connections then wait idle for several seconds before they
 * are used again: a server that closes idle connections before its clients do resets some of
 * those requests. Prints every 30 s and ends with one line:
 * `SOAK <minutes> min at <rate>/s: <sent> sent, <ok> ok, <failed> failed {status or error: count}`.
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

const arg = (name: string, fallback: number) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const minutes = arg("--minutes", 10);
const rate = arg("--rate", 200);
const BURST = 64;
const BURST_EVERY_MS = 12_000;
const url = (n: number) => `http://127.0.0.1:8083/api/pojo/mesh/${n}`;

async function answers(): Promise<boolean> {
  try {
    const res = await fetch(url(1), { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let demo: ReturnType<typeof spawn> | undefined;
if (!(await answers())) {
  const file = fileURLToPath(new URL("../scripts/demo.ts", import.meta.url));
  demo = spawn(process.execPath, ["run", "-A", file], { stdio: ["ignore", "ignore", "inherit"] });
  const until = Date.now() + 180_000;
  while (!(await answers())) {
    if (Date.now() > until) throw new Error("the demo did not serve within 180 s");
    await sleep(1000);
  }
}

const outcomes = new Map<string, number>();
let sent = 0, ok = 0, done = 0;
const count = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
function one(): void {
  const n = ++sent;
  fetch(url(n), { signal: AbortSignal.timeout(10_000) }).then(async (res) => {
    await res.body?.cancel();
    if (res.status === 200) ok++;
    else count(String(res.status));
  }, (e: Error) => {
    const cause = (e.cause as { code?: string } | undefined)?.code;
    count(cause ?? e.name ?? e.message.slice(0, 60));
  }).finally(() => done++);
}

const t0 = performance.now();
const end = t0 + minutes * 60_000;
let nextBurst = t0 + BURST_EVERY_MS, nextReport = t0 + 30_000;
const summary = () =>
  `${sent} sent, ${ok} ok, ${done - ok} failed ${JSON.stringify(Object.fromEntries(outcomes))}`;
for (let i = 0;; i++) {
  const due = t0 + (i * 1000) / rate;
  if (due >= end) break;
  const wait = due - performance.now();
  if (wait > 1) await sleep(wait);
  one();
  if (performance.now() >= nextBurst) {
    nextBurst += BURST_EVERY_MS;
    for (let b = 0; b < BURST; b++) one();
  }
  if (performance.now() >= nextReport) {
    nextReport += 30_000;
    console.log(`${Math.round((performance.now() - t0) / 1000)} s: ${summary()}`);
  }
}
const until = Date.now() + 15_000;
while (done < sent && Date.now() < until) await sleep(100);
console.log(`SOAK ${minutes} min at ${rate}/s: ${summary()}`);
if (demo !== undefined) {
  demo.kill("SIGTERM");
  await new Promise((r) => demo!.on("exit", r));
}
process.exit(0);
