/**
 * Logging through LogTape. Library modules log under the category `["minimesh", ...]` and stay
 * silent until the application configures a sink, for example with {@link setupLogging}.
 *
 * While a function handles a traced event, every log line written (by the library or by the
 * function, through LogTape) carries the event's `trace_id` and `trace_path`: in JSON lines as
 * properties, in text at the end of the line. Applications that configure LogTape themselves
 * get the same by passing `contextLocalStorage: new AsyncLocalStorage()` to `configure`.
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { configure, getConsoleSink, getTextFormatter, jsonLinesFormatter } from "@logtape/logtape";
import type { LogLevel, LogRecord } from "@logtape/logtape";

const LOG_LEVELS: readonly LogLevel[] = [
  "trace",
  "debug",
  "info",
  "warning",
  "error",
  "fatal",
];

/**
 * Sends minimesh's log records (and the application's, under the LogTape category
 * `appCategory`) to the console at `level` and above: `trace`, `debug`, `info`, `warning`
 * (or `warn`), `error` or `fatal`. Call it once at start-up; calling it again replaces the
 * setup. Applications that configure LogTape themselves route the `minimesh` category instead.
 * `format: "json"` writes one JSON object per line (as `log.format=json` asks of the monitor),
 * for log collectors.
 *
 * @throws {RangeError} For a level that does not exist.
 * @example
 * ```ts
 * import { setupLogging } from "@minimesh/core";
 * await setupLogging("warning");
 * ```
 */
export async function setupLogging(
  level: string = "info",
  appCategory = "app",
  options: { format?: "text" | "json" } = {},
): Promise<void> {
  const lowest = (level === "warn" ? "warning" : level) as LogLevel;
  if (!LOG_LEVELS.includes(lowest)) {
    throw new RangeError(`Unknown log level "${level}": use one of ${LOG_LEVELS.join(", ")}`);
  }
  await configure({
    reset: true,
    contextLocalStorage: new AsyncLocalStorage(),
    sinks: {
      console: getConsoleSink({
        formatter: options.format === "json" ? jsonLinesFormatter : getTextFormatter({
          timestamp: "date-time-tz",
          category: ".",
          value: "bare",
          format: ({ timestamp, level, category, message, record }) =>
            `${timestamp} [${level}] ${category}: ${message}${traceSuffix(record)}`,
        }),
      }),
    },
    loggers: [
      { category: ["minimesh"], sinks: ["console"], lowestLevel: lowest },
      { category: [appCategory], sinks: ["console"], lowestLevel: lowest },
      { category: ["logtape", "meta"], sinks: ["console"], lowestLevel: "warning" },
    ],
  });
}

// ` [trace 4bf9...]` for a line written while a traced event was handled, else nothing.
function traceSuffix(record: LogRecord): string {
  const id = record.properties.trace_id;
  return typeof id === "string" ? ` [trace ${id}]` : "";
}
