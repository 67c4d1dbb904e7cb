// The ready-made Grafana dashboard and Prometheus alert rules in docs/grafana reference only
// metrics that /metrics serves: the names in every expression are looked up in what a mesh
// application (with its HTTP server) and a monitor expose, on an in-memory Kafka.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { MemoryKafka } from "../kafka/mod.ts";
import { startHttp } from "../actuator/mod.ts";
import { startApp, startMonitor } from "./_mesh_memory.ts";
import type { MetricFamily } from "../bus/metrics.ts";

const root = new URL("../docs/grafana/", import.meta.url);

// Every `expr` in a parsed JSON or YAML document.
function expressions(doc: unknown, out: string[] = []): string[] {
  if (Array.isArray(doc)) { for (const x of doc) expressions(x, out); }
  else if (doc !== null && typeof doc === "object") {
    for (const [k, v] of Object.entries(doc)) {
      if (k === "expr" && typeof v === "string") out.push(v);
      else expressions(v, out);
    }
  }
  return out;
}

// The metric names of a PromQL expression: identifiers of ours, outside label matchers' values.
function metricNames(expr: string): string[] {
  const code = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  return [...code.matchAll(/\b(?:minimesh|process)_[a-z0-9_]+\b/g)].map((m) => m[0]);
}

describe("docs/grafana", () => {
  it("the dashboard and the alert rules use only metrics that /metrics serves", async () => {
    const kafka = new MemoryKafka();
    await using monitor = await startMonitor(kafka);
    await using app = startApp(kafka, [monitor], "observed");
    await app.connector.joined;
    await using http = await startHttp(app.platform, { port: 0, hostname: "127.0.0.1" });
    assert.ok(http.port > 0);
    const families = new Map<string, MetricFamily>();
    for (const f of [...monitor.platform.metrics(), ...app.platform.metrics()]) {
      families.set(f.name, f);
    }
    const dashboard = JSON.parse(readFileSync(new URL("minimesh-dashboard.json", root), "utf8"));
    const rules = parse(readFileSync(new URL("minimesh-alerts.yml", root), "utf8"));
    const all = [...expressions(dashboard), ...expressions(rules)];
    assert.ok(all.length >= 30, `${all.length} expressions`);
    const used = new Set<string>();
    for (const expr of all) {
      const names = metricNames(expr);
      assert.ok(names.length > 0, `no metric in ${expr}`);
      for (const name of names) {
        const base = name.replace(/_(bucket|sum|count)$/, "");
        const family = families.get(name) ?? families.get(base);
        assert.ok(family !== undefined, `${name} (in ${expr}) is not served`);
        if (family.name !== name) assert.equal(family.type, "histogram", name);
        used.add(family.name);
      }
    }
    // Each rule has the fields Prometheus requires.
    for (const rule of rules.groups[0].rules) {
      assert.ok(rule.alert && rule.expr && rule.labels?.severity, JSON.stringify(rule));
    }
    assert.ok(used.size >= 20, `${used.size} metrics used`);
  });
});
