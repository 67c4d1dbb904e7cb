/**
 * The npm build on Node against Moleculer's local `broker.call` on the same Node, in one run:
 * the in-memory cases of `bus_bench.ts` (sequential, 100 in flight) on the built package.
 *
 * `deno run -A bench/node_bus_bench.ts [requests] [--node 24] [--pairs 3]`: builds the package
 * (`scripts/build_npm.ts --pack`), installs it, Moleculer 0.15.2 (a bench-only dependency: it is
 * installed here, in a temporary project, never in the package) and Node from npm, then runs
 * each case in a fresh Node process (warm-up, best of 5 rounds), alternating minimesh and
 * Moleculer `pairs` times (the machine's speed drifts between processes). Prints a Markdown table:
 * the medians, and the ratio of the medians with the range of the pairs' ratios.
 *
 * @module
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const args = process.argv.slice(2);
const n = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const nodeVersion = args.includes("--node") ? args[args.indexOf("--node") + 1] : "24";
const pairs = args.includes("--pairs") ? Number(args[args.indexOf("--pairs") + 1]) : 3;
const MOLECULER = "moleculer@0.15.2";
const IN_FLIGHT = 100;

// What runs inside Node: one case, best of 5 rounds after a warm-up, requests per second.
const CASE_SCRIPT = `
import { Platform, PostOffice } from "@minimesh/core";
import { ServiceBroker } from "moleculer";
const [, , system, mode, nText] = process.argv;
const n = Number(nText);
const IN_FLIGHT = ${IN_FLIGHT};
let call;
let stop = async () => {};
if (system === "minimesh") {
  const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
  platform.register("bench.echo", (_h, body) => body, IN_FLIGHT);
  const po = new PostOffice({}, platform);
  call = async (i) => {
    const reply = await po.request({ to: "bench.echo", body: i }, 10000);
    if (reply.body !== i) throw new Error("wrong reply");
  };
} else {
  const broker = new ServiceBroker({ logger: false, metrics: false, tracing: false });
  broker.createService({ name: "bench", actions: { echo: (ctx) => ctx.params.i } });
  await broker.start();
  call = async (i) => {
    const r = await broker.call("bench.echo", { i });
    if (r !== i) throw new Error("wrong reply");
  };
  stop = () => broker.stop();
}
const one = async (count) => { for (let i = 0; i < count; i++) await call(i); };
const run = mode === "concurrent"
  ? (count) => Promise.all(Array.from({ length: IN_FLIGHT }, () => one(count / IN_FLIGHT)))
  : one;
await run(200000);
let best = 0;
for (let r = 0; r < 5; r++) {
  const t0 = performance.now();
  await run(n);
  best = Math.max(best, n / ((performance.now() - t0) / 1000));
}
await stop();
console.log(JSON.stringify(best));
`;

const sh = (cmd: string, argv: string[], cwd: string) =>
  execFileSync(cmd, argv, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

const root = new URL("..", import.meta.url).pathname;
const packed = sh(process.execPath, ["run", "-A", "scripts/build_npm.ts", "--pack"], root)
  .split("\n").find((l) => l.startsWith("Packed "))!.slice("Packed ".length).trim();
const project = mkdtempSync(join(tmpdir(), "minimesh-node-bench-"));
try {
  sh("npm", ["init", "-y"], project);
  sh("npm", ["pkg", "set", "type=module"], project);
  sh("npm", ["install", "--no-audit", "--no-fund", packed, MOLECULER], project);
  const nodeDir = join(project, "node");
  mkdirSync(nodeDir);
  sh(
    "npm",
    ["install", "--prefix", nodeDir, "--no-audit", "--no-fund", `node@${nodeVersion}`],
    project,
  );
  const node = join(nodeDir, "node_modules", ".bin", "node");
  const script = join(project, "case.mjs");
  writeFileSync(script, CASE_SCRIPT);
  const version = sh(node, ["--version"], project).trim();
  const rate = (system: string, mode: string) =>
    JSON.parse(sh(node, [script, system, mode, String(n)], project).trim().split("\n").pop()!);
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  console.log(`Node ${version}, npm build of this tree, ${MOLECULER} (local broker.call)`);
  console.log(
    `${n.toLocaleString("en-US")} requests per round, best of 5 rounds after a 200,000-request ` +
      `warm-up, each case in a fresh process; ${pairs} alternating pairs, medians\n`,
  );
  console.log("| mode | minimesh /s | Moleculer /s | minimesh / Moleculer (pairs) |");
  console.log("| --- | ---: | ---: | ---: |");
  for (
    const [label, mode] of [["sequential", "sequential"], [`${IN_FLIGHT} in flight`, "concurrent"]]
  ) {
    const m: number[] = [], mol: number[] = [];
    for (let i = 0; i < pairs; i++) {
      m.push(rate("minimesh", mode));
      mol.push(rate("moleculer", mode));
    }
    const ratios = m.map((x, i) => x / mol[i]);
    console.log(
      `| ${label} | ${fmt(median(m))} | ${fmt(median(mol))} | ${
        (median(m) / median(mol)).toFixed(2)
      } ` +
        `(${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}) |`,
    );
  }
} finally {
  rmSync(project, { recursive: true, force: true });
}
