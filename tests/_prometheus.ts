// Prometheus text read by the Prometheus project's own parser (expfmt, in tests/prometheus/, run
// with Go): what a real Prometheus server would accept, or the parser's error.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** One metric of a family, as tests/prometheus/main.go prints it. */
export interface ParsedMetric {
  labels: Record<string, string>;
  value?: string;
  buckets?: Record<string, number>;
  count?: number;
  sum?: number;
}

/** One metric family. */
export interface ParsedFamily {
  name: string;
  help: string;
  type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED";
  metrics: ParsedMetric[];
}

const dir = fileURLToPath(new URL("./prometheus/", import.meta.url));

/**
 * Parses `text` with expfmt.
 *
 * @throws {Error} With the parser's message when the text is not valid Prometheus text.
 */
export function parsePrometheus(text: string): ParsedFamily[] {
  try {
    const out = execFileSync("go", ["run", "."], { cwd: dir, input: text, encoding: "utf8" });
    return JSON.parse(out);
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`Prometheus parser: ${err.stderr?.trim() || err.message}`);
  }
}

/** The value of the counter or gauge `name` with the labels given. */
export function valueOf(
  families: ParsedFamily[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const m = families.find((f) => f.name === name)?.metrics.find((x) =>
    Object.entries(labels).every(([k, v]) => x.labels[k] === v)
  );
  return m?.value === undefined ? undefined : Number(m.value);
}
