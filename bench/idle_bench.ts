/**
 * CPU of an idle mesh application and of its monitor, per Kafka client: each joins a mesh of its
 * own, waits 3 s, then its CPU time over 30 s is read from `/proc` (Linux; 10 ms ticks, so the
 * figures are exact to 0.33 ms/s).
 *
 * `deno run -A bench/idle_bench.ts [rounds]` (default 2, alternating the clients) with a broker
 * on KAFKA_BROKERS (default 127.0.0.1:9092).
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { BROKERS, meshArgs, startMonitor, topicsFor } from "../tests/_presence.ts";
import { CLIENT_LIBRARIES } from "../kafka/properties.ts";
import { cpuMs } from "./_cpu.ts";

const ROUNDS = Number(process.argv[2] ?? 2);
const WINDOW_S = 30;
console.log("| client | idle application (ms/s) | idle monitor (ms/s) |\n| --- | ---: | ---: |");
for (let r = 0; r < ROUNDS; r++) {
  for (const client of CLIENT_LIBRARIES) {
    const t = topicsFor("idle");
    const kafka = [`-Dbootstrap.servers=${BROKERS}`, `-Dkafka.client=${client}`];
    const monitor = await startMonitor(t.args, kafka);
    const app = spawn(process.execPath, [
      "run",
      "-A",
      "tests/fixtures/mesh_app.ts",
      "-Dapplication.name=idle",
      ...meshArgs(monitor.port, t.args, kafka),
      "-Dlog.level=warning",
    ], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => {
      app.stdout!.on("data", (d: Uint8Array) => {
        if (new TextDecoder().decode(d).includes("JOINED")) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 3000));
    const a0 = cpuMs(app.pid!), m0 = cpuMs(monitor.proc.pid!);
    await new Promise((r) => setTimeout(r, WINDOW_S * 1000));
    console.log(
      `| ${client} | ${((cpuMs(app.pid!) - a0) / WINDOW_S).toFixed(2)} | ${
        ((cpuMs(monitor.proc.pid!) - m0) / WINDOW_S).toFixed(2)
      } |`,
    );
    app.kill("SIGTERM");
    await monitor.stop();
  }
}
process.exit(0);
