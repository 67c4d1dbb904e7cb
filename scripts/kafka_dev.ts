/**
 * A real, single-node Apache Kafka broker for development and tests (KRaft, 127.0.0.1).
 *
 * The broker jars come from Maven Central once per machine and per version, into a cache outside
 * the work tree; each start wipes and re-formats a temporary log folder, as the guide's
 * standalone dev server does. Only the process this module started is ever stopped.
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Kafka, logLevel } from "kafkajs";

/** The broker version used when `KAFKA_VERSION` is not set. */
export const DEFAULT_KAFKA_VERSION = "4.1.1";

/** Where one dev broker lives: its version, port, folders and files. */
export interface DevBroker {
  version: string;
  port: number;
  /** `host:port` for clients. */
  brokers: string;
  libDir: string;
  dataDir: string;
  logFile: string;
  pidFile: string;
}

/** Describes the dev broker for `version` on `port` without touching anything. */
export function devBroker(
  version = process.env.KAFKA_VERSION || DEFAULT_KAFKA_VERSION,
  port = Number(process.env.KAFKA_PORT || 9092),
): DevBroker {
  if (!/^\d+\.\d+\.\d+$/.test(version)) {
    throw new RangeError(`KAFKA_VERSION must look like 4.1.1, got "${version}"`);
  }
  const cache = process.env.MINIMESH_CACHE || join(homedir(), ".cache", "minimesh");
  const dataDir = join(tmpdir(), `minimesh-kafka-${port}`);
  return {
    version,
    port,
    brokers: `127.0.0.1:${port}`,
    libDir: join(cache, "kafka", version, "libs"),
    dataDir,
    logFile: join(dataDir, "server.log"),
    pidFile: join(tmpdir(), `minimesh-kafka-${port}.pid`),
  };
}

function isV3(version: string): boolean {
  return version.startsWith("3.");
}

function pom(version: string): string {
  // The broker's POM leaves the logging backend out; without one it logs nothing.
  const logging = isV3(version)
    ? [["org.slf4j", "slf4j-reload4j", "1.7.36"], ["ch.qos.reload4j", "reload4j", "1.2.25"]]
    : [
      ["org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"],
      ["org.apache.logging.log4j", "log4j-api", "2.24.3"],
      ["org.apache.logging.log4j", "log4j-core", "2.24.3"],
    ];
  const deps = [["org.apache.kafka", "kafka_2.13", version], ...logging]
    .map(([g, a, v]) =>
      `<dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version></dependency>`
    ).join("\n    ");
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.minimesh</groupId>
  <artifactId>kafka-dev-${version}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    ${deps}
  </dependencies>
</project>
`;
}

/** Fetches the broker's runtime jars from Maven Central unless they are cached already. */
export function ensureJars(b: DevBroker): void {
  const done = join(b.libDir, ".complete");
  if (existsSync(done)) return;
  const work = join(b.libDir, "..");
  rmSync(b.libDir, { recursive: true, force: true });
  mkdirSync(b.libDir, { recursive: true });
  writeFileSync(join(work, "pom.xml"), pom(b.version));
  console.log(`Fetching Apache Kafka ${b.version} from Maven Central into ${b.libDir} ...`);
  const r = spawnSync("mvn", [
    "-q",
    "-B",
    "-f",
    join(work, "pom.xml"),
    "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
    "-DincludeScope=runtime",
    `-DoutputDirectory=${b.libDir}`,
  ], { stdio: "inherit" });
  if (r.status !== 0) {
    throw new Error(
      `mvn could not fetch org.apache.kafka:kafka_2.13:${b.version} (exit ${r.status})`,
    );
  }
  writeFileSync(done, new Date().toISOString());
}

function clusterId(): string {
  for (;;) {
    const id = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))))
      .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    if (!id.startsWith("-")) return id;
  }
}

function serverProperties(b: DevBroker): string {
  const props: Record<string, string | number> = {
    "process.roles": "broker,controller",
    "node.id": 1,
    "controller.quorum.voters": `1@127.0.0.1:${b.port + 1}`,
    "listeners": `PLAINTEXT://127.0.0.1:${b.port},CONTROLLER://127.0.0.1:${b.port + 1}`,
    "advertised.listeners": `PLAINTEXT://127.0.0.1:${b.port}`,
    "controller.listener.names": "CONTROLLER",
    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
    "inter.broker.listener.name": "PLAINTEXT",
    "log.dirs": join(b.dataDir, "logs"),
    "num.partitions": 1,
    "offsets.topic.replication.factor": 1,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
    "default.replication.factor": 1,
    "min.insync.replicas": 1,
    "group.initial.rebalance.delay.ms": 0,
    "offsets.topic.num.partitions": 1,
    "transaction.state.log.num.partitions": 1,
    "log.cleaner.dedupe.buffer.size": 2097152,
    "auto.create.topics.enable": "true",
  };
  if (!isV3(b.version)) {
    props["share.coordinator.state.topic.replication.factor"] = 1;
    props["share.coordinator.state.topic.min.isr"] = 1;
  }
  return Object.entries(props).map(([k, v]) => `${k}=${v}`).join("\n") + "\n";
}

function loggingConfig(b: DevBroker): { file: string; flag: string } {
  if (isV3(b.version)) {
    const file = join(b.dataDir, "log4j.properties");
    writeFileSync(
      file,
      "log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n" +
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n" +
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n" +
        "log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=INFO\n",
    );
    return { file, flag: `-Dlog4j.configuration=file:${file}` };
  }
  const file = join(b.dataDir, "log4j2.properties");
  writeFileSync(
    file,
    "status=warn\nappender.console.type=Console\nappender.console.name=STDOUT\n" +
      "appender.console.layout.type=PatternLayout\nappender.console.layout.pattern=[%d] %p %m (%c)%n\n" +
      "rootLogger.level=info\nrootLogger.appenderRef.stdout.ref=STDOUT\n",
  );
  return { file, flag: `-Dlog4j2.configurationFile=${file}` };
}

/** True when `pid` is alive and is a Kafka broker (so a reused pid is never signalled). */
function isBrokerProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("kafka.Kafka");
  } catch {
    return false;
  }
}

/** The pid of the broker this module started on `b.port`, if it still runs. */
export function runningPid(b: DevBroker): number | undefined {
  if (!existsSync(b.pidFile)) return undefined;
  const pid = Number(readFileSync(b.pidFile, "utf8").trim());
  return Number.isInteger(pid) && isBrokerProcess(pid) ? pid : undefined;
}

/**
 * Resolves true once an admin call (list topics) succeeds against `brokers`, false when
 * `timeoutMs` passes first. Stops early if `alive()` turns false.
 */
export async function waitForKafka(
  brokers: string,
  timeoutMs: number,
  alive: () => boolean = () => true,
): Promise<boolean> {
  const kafka = new Kafka({
    clientId: "minimesh-dev-probe",
    brokers: brokers.split(","),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 2000,
    retry: { retries: 0 },
  });
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && alive()) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      await admin.listTopics();
      return true;
    } catch {
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
  return false;
}

/**
 * Starts the dev broker (fetching jars first if needed) and resolves once it answers. It starts
 * empty, unless `keepData` restarts it on the data it had (after {@link killKafka}, say).
 */
export async function startKafka(
  b: DevBroker = devBroker(),
  options: { keepData?: boolean } = {},
): Promise<number> {
  const existing = runningPid(b);
  if (existing) throw new Error(`a dev broker already runs on port ${b.port} (pid ${existing})`);
  ensureJars(b);
  if (!options.keepData) rmSync(b.dataDir, { recursive: true, force: true });
  mkdirSync(join(b.dataDir, "logs"), { recursive: true });
  const props = join(b.dataDir, "server.properties");
  writeFileSync(props, serverProperties(b));
  const logging = loggingConfig(b);
  const cp = `${b.libDir}/*`;
  // A kept data folder is formatted already, with its own cluster id.
  if (!options.keepData || !existsSync(join(b.dataDir, "logs", "meta.properties"))) {
    const fmt = spawnSync("java", [
      logging.flag,
      "-cp",
      cp,
      "kafka.tools.StorageTool",
      "format",
      "-t",
      clusterId(),
      "-c",
      props,
      "--ignore-formatted",
    ], { encoding: "utf8" });
    if (fmt.status !== 0) {
      throw new Error(
        `kafka storage format failed (exit ${fmt.status}): ${fmt.stderr || fmt.stdout}`,
      );
    }
  }
  const out = openSync(b.logFile, "a");
  const child = spawn("java", [
    "-Xms512m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-Djava.awt.headless=true",
    logging.flag,
    "-cp",
    cp,
    "kafka.Kafka",
    props,
  ], { detached: true, stdio: ["ignore", out, out] });
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not start java for the Kafka broker");
  child.unref();
  writeFileSync(b.pidFile, String(pid));
  const ok = await waitForKafka(b.brokers, 90_000, () => isBrokerProcess(pid));
  if (!ok) {
    await stopKafka(b);
    const tail = readFileSync(b.logFile, "utf8").split("\n").slice(-30).join("\n");
    throw new Error(`Kafka ${b.version} did not become ready on ${b.brokers}; log tail:\n${tail}`);
  }
  return pid;
}

/** Kills the broker this module started on `b.port` at once (SIGKILL), as a crash would. */
export function killKafka(b: DevBroker = devBroker()): Promise<boolean> {
  return endBroker(b, "SIGKILL");
}

/** Stops the broker this module started on `b.port` (SIGTERM, then SIGKILL after 20 s). */
export function stopKafka(b: DevBroker = devBroker()): Promise<boolean> {
  return endBroker(b, "SIGTERM");
}

async function endBroker(b: DevBroker, signal: "SIGTERM" | "SIGKILL"): Promise<boolean> {
  const pid = runningPid(b);
  rmSync(b.pidFile, { force: true });
  if (pid === undefined) return false;
  process.kill(pid, signal);
  for (let i = 0; i < 200 && isBrokerProcess(pid); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  if (isBrokerProcess(pid)) process.kill(pid, "SIGKILL");
  return true;
}
