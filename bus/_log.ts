// The loggers of the library's modules. Kept apart from log.ts so that the public
// declarations never mention LogTape's types (they need newer TypeScript libs than ours).
import { getLogger } from "@logtape/logtape";
import type { Logger } from "@logtape/logtape";

/** The logger of one library module (internal; applications use LogTape's `getLogger`). */
export function logger(...category: string[]): Logger {
  return getLogger(["minimesh", ...category]);
}
