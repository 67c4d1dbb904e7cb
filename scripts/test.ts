/**
 * `deno task test`: runs the whole suite against a real Kafka broker.
 *
 * Without arguments it runs every test file and doc example on the default Kafka client, then the
 * broker tests that are about the client on the other one (`kafka.client`), as jobs two at a
 * time (`TEST_JOBS`). Uses the cluster in
 * `KAFKA_BROKERS` when set; otherwise starts the dev broker on
 * 127.0.0.1:9092 unless one already answers there, and stops only what it started. Extra
 * arguments go to `deno test` (for example a single test file). Ends with a plain
 * `N passed, N failed, N skipped` line counting every test case (Deno's own summary counts
 * only top-level tests). A test file still running after `TEST_FILE_TIMEOUT` seconds (900 by
 * default) is killed with what it started, counted as failed, and its output so far printed.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { devBroker, startKafka, stopKafka, waitForKafka } from "./kafka_dev.ts";
import { CLIENT_LIBRARIES, DEFAULT_CLIENT } from "../kafka/properties.ts";

/** The library's folders, whose doc examples run as tests too. */
const LIBRARY = [
  "mod.ts",
  "bus/",
  "runtime/",
  "kafka/",
  "protocol/",
  "connector/",
  "presence/",
  "actuator/",
];

const given = process.env.KAFKA_BROKERS;
const broker = devBroker();
const brokers = given ?? broker.brokers;
let started = false;

if (!(await waitForKafka(brokers, given ? 15_000 : 1_000))) {
  if (given) {
    console.error(`KAFKA_BROKERS=${given} does not answer; not starting a dev broker.`);
    process.exit(1);
  }
  console.log(`No Kafka on ${brokers}: starting the dev broker (Kafka ${broker.version}) ...`);
  await startKafka(broker, { progress: console.log });
  started = true;
  console.log(`Kafka ${broker.version} ready on ${brokers}; log: ${broker.logFile}`);
}

// Without arguments: the suite as jobs, two at a time (`TEST_JOBS`), each a `deno test` process:
// every test file that needs no broker plus every @example in the library's doc comments (one
// job, its files in parallel); each file of tests/broker on the default Kafka client; and the
// broker tests that are about the client (reading, failover, security, topic administration) on
// the other client too, so that both stay whole. Every other layer above the client is the same code on both and runs once; the
// mixed mesh (mixed_clients_test.ts) and the reading policy's unit tests cover the second client
// there. Jobs of one file never overlap (a file may run a broker of its own on a fixed port). A
// job's output is printed whole when it ends.
const OTHER_CLIENT_TESTS = [
  "faults_test.ts",
  "delivery_test.ts",
  "cluster_test.ts",
  "topics_test.ts",
  "kafka_security_test.ts",
  "connector_test.ts",
  "kafka_smoke_test.ts",
];
// What measures the capacity of a server runs with no other job beside it (it needs the CPU),
// and so does the multi-host fault suite (three brokers, two monitors and three apps of its own).
const ALONE = ["tests/capacity/http_server_test.ts", "tests/broker/hosts_test.ts"];
// The slowest first, so that the last job to start is a short one.
const SLOW_FIRST = [
  "faults_test.ts",
  "presence_test.ts",
  "hostile_test.ts",
  "cluster_test.ts",
  "chaos_test.ts",
  "topics_test.ts",
  "npm_test.ts",
  "kafka_security_test.ts",
];
const args = process.argv.slice(2);
const other = CLIENT_LIBRARIES.find((c) => c !== DEFAULT_CLIENT)!;
const brokerFiles = readdirSync("tests/broker")
  .filter((f) => f.endsWith("_test.ts") && !ALONE.includes(`tests/broker/${f}`))
  .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
type Job = { files: string[]; client?: string; key: string; alone?: boolean };
const unit: Job = {
  files: [
    "--parallel",
    "--doc",
    ...LIBRARY,
    ...readdirSync("tests").filter((f) => f.endsWith("_test.ts")).map((f) => `tests/${f}`)
      .filter((f) => !ALONE.includes(f)),
  ],
  key: "unit",
};
// Each broker file on the default client, the other client's run of it next in line (it starts
// as soon as the first ends), the unit tests after the slow files.
const jobs: Job[] = args.length ? [{ files: args, key: "args" }] : [
  ...ALONE.map((f) => ({ files: [f], key: f, alone: true })),
  ...brokerFiles.flatMap((f, i) => [
    ...(i === SLOW_FIRST.length ? [unit] : []),
    { files: [`tests/broker/${f}`], key: f },
    ...(OTHER_CLIENT_TESTS.includes(f)
      ? [{ files: [`tests/broker/${f}`], client: other, key: f }]
      : []),
  ]),
];
if (!args.length && !jobs.includes(unit)) jobs.push(unit);
const width = Math.max(1, Number(process.env.TEST_JOBS) || 2);
// The slowest file takes about 5 minutes on a slow machine; a hang must not take the whole CI
// time limit, and its output so far says where it stopped.
const fileTimeoutMs = 1000 * (Number(process.env.TEST_FILE_TIMEOUT) || 900);
// Each job is a process group of its own (so that a timeout ends what it started): an
// interrupt of the suite ends them too.
const groups = new Set<number>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    for (const pid of groups) killGroup(pid);
    process.exit(130);
  });
}

let passed = 0, failed = 0, skipped = 0, code = 0;
const suiteStart = Date.now();
const running = new Set<string>();
let alone = false; // a job that runs by itself is running
const pending = [...jobs];
await new Promise<void>((resolve) => {
  const next = () => {
    if (pending.length === 0 && running.size === 0) return resolve();
    while (running.size < width && !alone) {
      const i = pending.findIndex((j) => !running.has(j.key) && (!j.alone || running.size === 0));
      if (i < 0) break;
      const [job] = pending.splice(i, 1);
      running.add(job.key);
      alone = job.alone === true;
      const label = (job.key === "unit" ? "unit tests and doc examples" : job.files.join(" ")) +
        (job.client ? ` on kafka.client=${job.client}` : "");
      console.log(`[${clock()}] start ${label}`);
      const began = Date.now();
      run(job.files, job.client, jobs.length > 1).then((result) => {
        running.delete(job.key);
        if (job.alone) alone = false;
        if (result.output) process.stdout.write(result.output);
        console.log(
          `[${clock()}] end   ${label}: ${result.passed} passed, ${result.failed} failed, ` +
            `${result.skipped} skipped (${((Date.now() - began) / 1000).toFixed(0)} s)`,
        );
        passed += result.passed;
        failed += result.failed;
        skipped += result.skipped;
        code ||= result.code;
        next();
      });
    }
  };
  next();
});

if (started) await stopKafka(broker);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(code);

function rank(file: string) {
  const i = SLOW_FIRST.indexOf(file);
  return i < 0 ? SLOW_FIRST.length : i;
}

function clock() {
  const s = Math.round((Date.now() - suiteStart) / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// One `deno test` run; counts its leaf test cases. With `buffer`, its output is kept and
// returned rather than streamed, so that jobs side by side do not interleave.
async function run(files: string[], client: string | undefined, buffer: boolean) {
  const reportDir = mkdtempSync(join(tmpdir(), "minimesh-junit-"));
  const junit = join(reportDir, "report.xml");
  const env: Record<string, string | undefined> = {
    ...process.env,
    KAFKA_BROKERS: brokers,
    KAFKAJS_NO_PARTITIONER_WARNING: "1",
  };
  if (client !== undefined) env.KAFKA_CLIENT = client;
  let output = "";
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ["test", "-A", `--junit-path=${junit}`, ...files], {
      stdio: buffer ? ["ignore", "pipe", "pipe"] : "inherit",
      env,
      detached: true,
    });
    const pid = child.pid!;
    groups.add(pid);
    const timer = setTimeout(() => {
      const message = `\n${files.join(" ")}: still running after ${fileTimeoutMs / 1000} s ` +
        "(TEST_FILE_TIMEOUT): killed with the processes it started\n";
      if (buffer) output += message;
      else console.error(message);
      killGroup(pid);
    }, fileTimeoutMs);
    child.stdout?.on("data", (d) => output += d);
    child.stderr?.on("data", (d) => output += d);
    child.on("exit", (c, signal) => {
      clearTimeout(timer);
      groups.delete(pid);
      resolve(c ?? (signal ? 1 : 0));
    });
  });
  const counts = countCases(junit, code);
  rmSync(reportDir, { recursive: true, force: true });
  return { code, output, ...counts };
}

// Ends a job: its process group, and every process it started in a group of its own (a test's
// Kafka nodes are detached, and would keep their ports from the next file that starts them).
function killGroup(pid: number) {
  const all = [-pid, ...descendants(pid)];
  for (const p of all) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

// The processes below `root`, from /proc (Linux; elsewhere none are found and only the group
// ends).
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[] = [];
  try {
    entries = readdirSync("/proc").filter((e) => /^\d+$/.test(e));
  } catch {
    // no /proc
  }
  for (const entry of entries) {
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const siblings = children.get(ppid);
      if (siblings === undefined) children.set(ppid, [Number(entry)]);
      else siblings.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  const found = [...children.get(root) ?? []];
  for (let i = 0; i < found.length; i++) found.push(...children.get(found[i]) ?? []);
  return found;
}

// Counts leaf test cases from the JUnit report: a `describe` appears there as a test case too,
// and is left out when another case is named "<its name> > ...".
function countCases(junit: string, code: number) {
  let passed = 0, failed = 0, skipped = 0;
  try {
    const xml = readFileSync(junit, "utf8");
    const cases = [
      ...xml.matchAll(/<testcase\b[^>]*?name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g),
    ]
      .map((m) => ({ name: m[1], inner: m[3] ?? "" }));
    const parents = new Set<string>();
    for (const c of cases) {
      const parts = c.name.split(" &gt; ");
      for (let i = 1; i < parts.length; i++) parents.add(parts.slice(0, i).join(" &gt; "));
    }
    for (const c of cases) {
      if (parents.has(c.name)) continue;
      if (/<failure\b|<error\b/.test(c.inner)) failed++;
      else if (/<skipped\b/.test(c.inner)) skipped++;
      else passed++;
    }
  } catch {
    failed = Math.max(failed, code === 0 ? 0 : 1);
  }
  if (code !== 0 && failed === 0) failed = 1; // a crash outside any test still fails the run
  return { passed, failed, skipped };
}
