/**
 * In-memory request/response throughput against a direct `await fn()` baseline, in one run.
 *
 * `deno task bench` (or `deno run -A bench/bus_bench.ts [requests]`). Each case runs in a fresh
 * child process of the same runtime, so one case's JIT state cannot help or hurt another;
 * each warms up, then reports the best of 5 rounds. Prints a Markdown table.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Platform, PostOffice, RequestTimeoutError } from "../mod.ts";
import type { LambdaFunction } from "../mod.ts";

const IN_FLIGHT = 100;
const ROUNDS = 5;
const CASES = ["direct-sequential", "bus-sequential", "direct-concurrent", "bus-concurrent"];

const echo: LambdaFunction = (_headers, body) => body;

/** Runs one case in this process and returns requests per second (best round). */
async function runCase(name: string, n: number): Promise<number> {
  const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
  platform.register("bench.echo", echo, IN_FLIGHT);
  const po = new PostOffice({}, platform);
  const headers = {};
  const direct = async (count: number) => {
    for (let i = 0; i < count; i++) await echo(headers, i, 1, undefined as never);
  };
  const viaBus = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const reply = await po.request({ to: "bench.echo", body: i }, 10_000);
      if (reply.body !== i) throw new Error(`wrong reply ${reply.body} for ${i}`);
    }
  };
  const one = name.startsWith("direct") ? direct : viaBus;
  const run = name.endsWith("concurrent")
    ? (count: number) =>
      Promise.all(Array.from({ length: IN_FLIGHT }, () => one(count / IN_FLIGHT))).then(() => {})
    : one;
  await run(200_000);
  let best = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    await run(n);
    best = Math.max(best, n / ((performance.now() - t0) / 1000));
  }
  return best;
}

/** A request to a function that never answers must still time out on this path. */
async function timeoutCheck(): Promise<[boolean, number]> {
  const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
  platform.register("bench.never", () => new Promise(() => {}));
  const t0 = performance.now();
  try {
    await new PostOffice({}, platform).request({ to: "bench.never" }, 50);
    return [false, performance.now() - t0];
  } catch (e) {
    return [e instanceof RequestTimeoutError, performance.now() - t0];
  }
}

if (process.argv[2] === "--case") {
  console.log(JSON.stringify(await runCase(process.argv[3], Number(process.argv[4]))));
} else {
  const n = Number(process.argv[2] ?? 1_000_000);
  const self = fileURLToPath(import.meta.url);
  const rate: Record<string, number> = {};
  for (const name of CASES) {
    const out = execFileSync(process.execPath, ["run", "-A", self, "--case", name, String(n)], {
      encoding: "utf8",
    });
    rate[name] = JSON.parse(out.trim().split("\n").pop()!);
  }
  const [timedOut, timeoutMs] = await timeoutCheck();
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  console.log(`Runtime: Deno ${process.versions.deno}`);
  console.log(
    `${n.toLocaleString("en-US")} requests per round, best of ${ROUNDS} rounds, ` +
      `each case in a fresh process after a 200,000-request warm-up\n`,
  );
  console.log("| mode | direct `await fn()` /s | bus `request()` /s | bus / direct |");
  console.log("| --- | ---: | ---: | ---: |");
  for (
    const [mode, key] of [["sequential", "sequential"], [`${IN_FLIGHT} in flight`, "concurrent"]]
  ) {
    const base = rate[`direct-${key}`], bus = rate[`bus-${key}`];
    console.log(`| ${mode} | ${fmt(base)} | ${fmt(bus)} | ${(bus / base).toFixed(3)} |`);
  }
  console.log(
    `\nTimeout check: a 50 ms request to a function that never answers ${
      timedOut ? "rejected with RequestTimeoutError" : "DID NOT time out"
    } after ${timeoutMs.toFixed(1)} ms`,
  );
  if (!timedOut) process.exit(1);
}
