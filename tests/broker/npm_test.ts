// The npm package: built with scripts/build_npm.ts, packed, installed into a temporary Node
// project (no path tricks), type-checked as a consumer would, and used from Node 22 and Node 24
// (the npm registry's `node` package): a Node application and this Deno process join one mesh,
// through a presence monitor run from the package's `bin`.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import process from "node:process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventEnvelope, Platform, PostOffice } from "../../mod.ts";
import { connectToCloud } from "../../connector/mod.ts";
import type { KafkaConnector } from "../../connector/mod.ts";
import { BROKERS, eventually, meshArgs, topicsFor } from "../_presence.ts";
import { spawnDeno, spawnProcess } from "../_processes.ts";
import type { DenoProcess } from "../_processes.ts";
import { launchBrowser, noBrowser } from "../_browser.ts";
import type { PageDocument } from "../_browser.ts";

const NODES = ["22", "24"];
const PLATFORMATIC = `@platformatic/kafka@${
  (JSON.parse(readFileSync(new URL("../../deno.json", import.meta.url), "utf8")).imports[
    "@platformatic/kafka"
  ] as string).split("@").pop()
}`;
declare const document: PageDocument; // in the functions that run in the page
const PACKAGE = "@minimesh/core";
let project: string;
const nodeBin: Record<string, string> = {};

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

before(async () => {
  const build = spawnDeno("scripts/build_npm.ts", ["--pack"]);
  const packed = await build.waitFor(/^Packed /, 180_000);
  await build.exited;
  const tarball = packed.slice("Packed ".length).trim();
  project = mkdtempSync(join(tmpdir(), "minimesh-npm-"));
  run("npm", ["init", "-y"], project);
  run("npm", ["pkg", "set", "type=module"], project);
  run(
    "npm",
    // The mesh's Kafka client, as the README says (an optional peer of the package).
    ["install", "--no-audit", "--no-fund", tarball, "typescript@~5.9.3", PLATFORMATIC],
    project,
  );
  for (const v of NODES) {
    // Each Node in a folder of its own: both packages would claim the `node` command.
    const dir = join(project, `node${v}`);
    mkdirSync(dir);
    run("npm", ["install", "--prefix", dir, "--no-audit", "--no-fund", `node@${v}`], project);
    nodeBin[v] = join(dir, "node_modules", ".bin", "node");
  }
});

after(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe("the npm package", () => {
  it("installs with the presence monitor's command and no Deno-only files", () => {
    const esm = readdirSync(join(project, "node_modules", PACKAGE, "esm", "runtime"));
    assert.ok(esm.includes("node.js"));
    assert.ok(!esm.includes("deno.js"), "the Deno adapter is not shipped");
    assert.ok(readdirSync(join(project, "node_modules", ".bin")).includes("minimesh-presence"));
  });

  it("installs no Kafka client for the bus alone: the clients are optional peers", () => {
    const dir = join(project, "node_modules", PACKAGE);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), ["@platformatic/kafka", "kafkajs"]);
    assert.equal(pkg.peerDependenciesMeta.kafkajs.optional, true);
    assert.equal(pkg.dependencies.kafkajs, undefined);
    assert.equal(pkg.dependencies["@platformatic/kafka"], undefined);
    // This project installed @platformatic/kafka (the mesh's default), and not kafkajs.
    assert.ok(!readdirSync(join(project, "node_modules")).includes("kafkajs"));
  });

  it("is made for npm: its own README, the docs, exact engines, the minimesh command", () => {
    const dir = join(project, "node_modules", PACKAGE);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    assert.equal(pkg.engines.node, ">=22.22.0");
    assert.equal(pkg.homepage, "https://jsr.io/@minimesh/core");
    const readme = readFileSync(join(dir, "README.md"), "utf8");
    assert.match(readme, /^# @minimesh\/core for Node\.js/);
    assert.doesNotMatch(readme, /\]\((?!https?:)[^)]+\)/, "no relative links");
    assert.ok(readdirSync(join(dir, "docs")).includes("mesh.md"));
    assert.ok(readdirSync(join(project, "node_modules", ".bin")).includes("minimesh"));
    for (const v of NODES) {
      const out = execFileSync(nodeBin[v], [join(dir, "esm", "cli", "main.js"), "--version"], {
        encoding: "utf8",
      });
      assert.equal(out.trim(), pkg.version);
    }
  });

  it("loads with require (CommonJS) as its README says, on Node 22 and 24", () => {
    const file = join(project, "cjs.cjs");
    writeFileSync(
      file,
      [
        `const { Platform, PostOffice } = require("${PACKAGE}");`,
        `const p = new Platform({ dir: "/nonexistent", args: [], env: {} });`,
        `p.register("a.b", (_h, body) => body + 1);`,
        `new PostOffice({}, p).request({ to: "a.b", body: 41 }, 1000)`,
        `  .then((r) => { console.log("REPLY " + r.body); process.exit(0); });`,
      ].join("\n"),
    );
    for (const v of NODES) {
      const out = execFileSync(nodeBin[v], [file], { cwd: project, encoding: "utf8" });
      assert.match(out, /REPLY 42/, `Node ${v}`);
    }
  });

  it("serves Node's garbage collections in /metrics (Deno reports none)", () => {
    const file = join(project, "gc.mjs");
    writeFileSync(
      file,
      [
        `import { Platform } from "${PACKAGE}";`,
        `const p = new Platform({ dir: "/nonexistent", args: [], env: {} });`,
        "p.metrics(); // the first scrape starts the count",
        "const junk = [];",
        `for (let i = 0; i < 300000; i++) junk.push({ i, s: "x".repeat(20) });`,
        "setTimeout(() => {",
        `  const f = p.metrics().find((f) => f.name === "minimesh_gc_collections_total");`,
        `  console.log("GC " + (f ? f.samples.reduce((n, s) => n + s.value, 0) : -1));`,
        "  process.exit(0);",
        "}, 300);",
      ].join("\n"),
    );
    for (const v of NODES) {
      const out = execFileSync(nodeBin[v], [file], { cwd: project, encoding: "utf8" });
      const n = Number(/GC (-?\d+)/.exec(out)?.[1]);
      assert.ok(n > 0, `Node ${v}: ${out}`);
    }
  });

  for (const resolution of ["node16", "bundler"]) {
    it(`type-checks for a TypeScript consumer with moduleResolution ${resolution}`, () => {
      const dir = mkdtempSync(join(project, `types-${resolution}-`));
      writeFileSync(
        join(dir, "consumer.ts"),
        [
          `import { EventEnvelope, Platform, PostOffice, RequestTimeoutError } from "${PACKAGE}";`,
          `import type { LambdaFunction } from "${PACKAGE}";`,
          `import { connectToCloud, KafkaConnector } from "${PACKAGE}/connector";`,
          `import { actuatorHandler, startHttp } from "${PACKAGE}/actuator";`,
          `import { PresenceMonitor } from "${PACKAGE}/presence";`,
          "const fn: LambdaFunction<string, string> = (_h, body) => body.toUpperCase();",
          "const p = new Platform();",
          'p.register("a.b", fn);',
          "const reply: Promise<EventEnvelope<string>> = new PostOffice({}, p)",
          '  .request<string>({ to: "a.b" }, { timeout: 100, signal: AbortSignal.timeout(50) });',
          "const c: KafkaConnector | undefined = connectToCloud(p);",
          "export async function scoped(): Promise<void> {",
          "  await using monitor = new PresenceMonitor(new Platform());",
          "  await monitor.start();",
          "}",
          "export { actuatorHandler, c, reply, RequestTimeoutError, startHttp };",
        ].join("\n"),
      );
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            module: resolution === "node16" ? "node16" : "esnext",
            moduleResolution: resolution,
            target: "ES2022",
            strict: true,
            noEmit: true,
            lib: ["ES2022", "ESNext.Disposable", "DOM"],
            types: [],
          },
          files: ["consumer.ts"],
        }),
      );
      const tsc = join(project, "node_modules", "typescript", "bin", "tsc");
      try {
        run("node", [tsc, "-p", dir], dir);
      } catch (e) {
        assert.fail(`tsc failed:\n${(e as { stdout?: string }).stdout}`);
      }
    });
  }

  for (const version of NODES) {
    describe(`on Node ${version}`, () => {
      let monitor: DenoProcess, app: DenoProcess;
      let tester: Platform, connector: KafkaConnector;
      let nodeOrigin: string;
      let nodePort: number;
      let monitorPort: number;
      let testerBroadcasts = 0;

      before(async () => {
        const bin = nodeBin[version];
        const t = topicsFor(`npm${version}`);
        monitor = spawnProcess(
          bin,
          [
            join(project, "node_modules", PACKAGE, "esm", "presence", "main.js"),
            "-Dserver.port=0",
            "-Dserver.host=127.0.0.1",
            `-Dbootstrap.servers=${BROKERS}`,
            ...t.args,
          ],
          "minimesh-presence",
          project,
        );
        const port =
          /port (\d+)/.exec(await monitor.waitFor(/Websocket server running on port/))![1];
        await monitor.waitFor(/Presence monitor \w+ ready/);
        monitorPort = Number(port);
        const mesh = [
          ...meshArgs(Number(port), t.args),
          "-Dmandatory.health.dependencies=cloud.connector.health",
        ];
        writeFileSync(
          join(project, "app.mjs"),
          `import process from "node:process";
import { Platform, PostOffice, setupLogging } from "${PACKAGE}";
import { registerWorker } from "${PACKAGE}/workers";
import { connectToCloud } from "${PACKAGE}/connector";
import { startHttp } from "${PACKAGE}/actuator";
await setupLogging("info");
const p = new Platform({ dir: process.cwd(), defaults: { "application.name": "node-app" } });
let broadcasts = 0;
p.register("node.hello", (_h, body) => "node " + process.version + " got " + body);
p.register("both.bcast", () => void broadcasts++);
p.register("node.count", () => broadcasts);
p.register("node.call", async (h, body) => (await new PostOffice(h, p).request({ to: h.target, body }, { timeout: 5000 })).body);
registerWorker(p, "node.work", new URL("./work.mjs", import.meta.url), { instances: 2 });
const c = connectToCloud(p);
await c.joined;
const server = await startHttp(p, { port: 0, hostname: "127.0.0.1" });
console.log("JOINED " + p.origin + " " + server.port);
process.on("SIGTERM", () => p.stop().finally(() => process.exit(0)));
`,
        );
        writeFileSync(
          join(project, "work.mjs"),
          `import { threadId } from "node:worker_threads";
export default (_h, body, instance) => ({ instance, thread: threadId, twice: body * 2 });
`,
        );
        app = spawnProcess(bin, ["app.mjs", ...mesh], "node app", project);
        const joined = /JOINED (\w+) (\d+)/.exec(await app.waitFor(/^JOINED /))!;
        nodeOrigin = joined[1];
        nodePort = Number(joined[2]);
        tester = new Platform({
          dir: "/nonexistent",
          env: { KAFKA_CLIENT: process.env.KAFKA_CLIENT },
          args: ["-Dapplication.name=deno-app", ...mesh],
        });
        tester.register("deno.hello", (_h, body) => `deno got ${body}`);
        tester.register("both.bcast", () => void testerBroadcasts++);
        connector = connectToCloud(tester)!;
        await connector.joined;
        await eventually(() => connector.reaches("node.hello"), 15_000, "node.hello");
      });

      after(async () => {
        await connector?.stop();
        await app?.stop();
        await monitor?.stop();
      });

      it("a worker function runs in a Node worker thread", async () => {
        const reply = await new PostOffice({}, tester).request(
          { to: "node.work", body: 21 },
          10_000,
        );
        assert.equal(reply.status, 200, String(reply.body));
        const body = reply.body as { instance: number; thread: number; twice: number };
        assert.equal(body.twice, 42);
        assert.ok(body.thread > 0, "not the main thread");
      });

      it("the Deno and Node applications call each other", async () => {
        const po = new PostOffice({}, tester);
        const toNode = await po.request({ to: "node.hello", body: "hi" }, 5000);
        assert.equal(toNode.status, 200);
        assert.match(String(toNode.body), /^node v\d+\.\d+\.\d+ got hi$/);
        assert.match(String(toNode.body), new RegExp(`^node v${version}\\.`));
        // The Node app learns the Deno app's routes from its exchange a moment after joining.
        let back: EventEnvelope | undefined;
        await eventually(
          async () => {
            back = await po.request(
              { to: "node.call", headers: { target: "deno.hello" }, body: "from node" },
              5000,
            );
            return back.status !== 404;
          },
          5000,
          "the Node app to know deno.hello",
        );
        assert.deepEqual([back?.status, back?.body], [200, "deno got from node"]);
      });

      it("the Node application serves the actuator and Event over HTTP (node:http + ws)", async () => {
        const health = await fetch(`http://127.0.0.1:${nodePort}/health`);
        assert.equal(health.status, 200);
        assert.match((await health.json()).dependency[0].message, /^Loopback test took \d+ ms$/);
        const res = await fetch(`http://127.0.0.1:${nodePort}/api/event`, {
          method: "POST",
          body: new EventEnvelope({ to: "deno.hello", body: "over http" }).toBytes() as BodyInit,
        });
        assert.equal(res.status, 200);
        const reply = EventEnvelope.fromBytes(new Uint8Array(await res.arrayBuffer()));
        assert.equal(reply.body, "deno got over http");
      });

      it("the Node monitor serves the live dashboard", { skip: noBrowser() }, async () => {
        const browser = await launchBrowser();
        try {
          const page = await browser.newPage();
          await page.goto(`http://127.0.0.1:${monitorPort}/`);
          for (const origin of [nodeOrigin, tester.origin]) {
            await page.waitForSelector(`#apps tr[data-origin="${origin}"]`, { timeout: 10_000 });
          }
          // Routes come with each application's report (every 5 s, the first at its join).
          await page.waitForFunction(
            (sel) =>
              document.querySelector(sel)
                ?.textContent?.includes("node.hello"),
            { timeout: 10_000 },
            `#apps tr[data-origin="${nodeOrigin}"] td.routes`,
          );
        } finally {
          await browser.close();
        }
      });

      it("a broadcast reaches both", async () => {
        await new PostOffice({}, tester).broadcast({ to: "both.bcast" });
        await eventually(
          async () => {
            const count = await new PostOffice({}, tester).request(
              { to: `node.count@${nodeOrigin}` },
              5000,
            );
            return count.body === 1 && testerBroadcasts === 1;
          },
          10_000,
          "one broadcast on each side",
        );
      });
    });
  }
});
