// The loggers of the library's modules. Kept apart from log.ts so that the public
// declarations never mention LogTape's types (they need newer TypeScript libs than ours).
import { getLogger, withContext } from "@logtape/logtape";
import type { Logger } from "@logtape/logtape";

/** The logger of one library module (internal; applications use LogTape's `getLogger`). */
export function logger(...category: string[]): Logger {
  return getLogger(["minimesh", ...category]);
}

/**
 * A log call for messages that outsiders choose how often to cause (refused records, refused
 * connections): each message template is logged at most `perSecond` times a second; the next
 * one logged after a pause says how many were left out.
 */
export function throttled(
  log: Logger,
  level: "warn" | "error",
  perSecond = 5,
): (message: string, properties?: Record<string, unknown>) => void {
  const windows = new Map<string, { start: number; count: number; left: number }>();
  return (message, properties = {}) => {
    const now = Date.now();
    let w = windows.get(message);
    if (w === undefined) {
      if (windows.size >= 100) windows.clear(); // templates are constants; this is a safety net
      windows.set(message, w = { start: now, count: 0, left: 0 });
    }
    if (now - w.start >= 1000) {
      w.start = now;
      w.count = 0;
    }
    if (++w.count > perSecond) {
      w.left++;
      return;
    }
    if (w.left === 0) return log[level](message, properties);
    log[level](`${message} ({left} more like it were not logged)`, { ...properties, left: w.left });
    w.left = 0;
  };
}

// Whether LogTape keeps implicit contexts (setupLogging, or an application's own configure with
// contextLocalStorage): without, withContext would only warn.
function contextKept(): boolean {
  return (getLogger() as unknown as { contextLocalStorage?: unknown }).contextLocalStorage != null;
}

/**
 * Runs `fn` with `trace_id` (and `trace_path`) in the implicit context of every log record it
 * writes, when LogTape keeps contexts; otherwise just runs it.
 */
export function inTrace<T>(traceId: string, path: string | undefined, fn: () => T): T {
  if (!contextKept()) return fn();
  return withContext(
    path === undefined ? { trace_id: traceId } : {
      trace_id: traceId,
      trace_path: path,
    },
    fn,
  );
}
