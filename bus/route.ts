/**
 * Route names and origin ids: the Java original's naming rules and its `yyyyMMdd` + 32-hex
 * origin id (docs/wire.md, "Names").
 *
 * @module
 */
import { createHash } from "node:crypto";
import { randomHex32 } from "./_ids.ts";
import { InvalidRouteError } from "./errors.ts";

/** The route of the temporary inbox that receives RPC replies. */
export const TEMPORARY_INBOX = "temporary.inbox";

const RESERVED_EXTENSIONS = new Set([
  "con",
  "prn",
  "aux",
  "nul",
  "com",
  "exe",
  ...Array.from({ length: 9 }, (_, i) => `com${i + 1}`),
  ...Array.from({ length: 9 }, (_, i) => `lpt${i + 1}`),
]);

/**
 * Why `route` is not a valid route name, or `undefined` when it is.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { routeProblem } from "./route.ts";
 * assert(routeProblem("hello.world") === undefined);
 * assert(routeProblem("hello") !== undefined);
 * ```
 */
export function routeProblem(route: unknown): string | undefined {
  if (typeof route !== "string") return `a route must be a string, got ${typeof route}`;
  if (route.length === 0) return "a route must not be empty";
  if (route.length > 255) return "a route must be at most 255 characters";
  if (!/^[0-9a-z._-]+$/.test(route)) {
    return "use only lowercase letters, digits, '.', '_' and '-'";
  }
  const first = route[0], last = route[route.length - 1];
  if (".-_".includes(first) || ".-_".includes(last)) {
    return "a route must not start or end with '.', '_' or '-'";
  }
  if (route.includes("..")) return "a route must not contain '..'";
  if (!route.includes(".")) return "a route must contain at least one '.'";
  if (route === "thumbs.db") return "thumbs.db is a reserved name";
  const ext = route.slice(route.lastIndexOf(".") + 1);
  if (RESERVED_EXTENSIONS.has(ext)) return `the extension .${ext} is reserved`;
  return undefined;
}

/**
 * Returns `route` when it is a valid route name, and throws otherwise.
 *
 * @throws {InvalidRouteError} Naming the route and the rule it breaks.
 * @example
 * ```ts
 * import { validateRoute } from "./route.ts";
 * validateRoute("hello.world");
 * ```
 */
export function validateRoute(route: string): string {
  const problem = routeProblem(route);
  if (problem) throw new InvalidRouteError(String(route), problem);
  return route;
}

/**
 * Splits `route@origin` into its parts; `origin` is undefined without an `@`. The result is
 * frozen and may be shared between calls.
 */
export function splitAddress(to: string): { route: string; origin?: string } {
  const at = to.indexOf("@");
  if (at < 0) return { route: to };
  // Remembered: the mesh splits the same few addresses for every event, and the same origin
  // string each time lets the routing table's lookups reuse its hash.
  let parts = SPLIT.get(to);
  if (parts === undefined) {
    if (SPLIT.size >= 4096) SPLIT.clear();
    parts = Object.freeze({ route: to.slice(0, at), origin: to.slice(at + 1) });
    SPLIT.set(to, parts);
  }
  return parts;
}
const SPLIT = new Map<string, { readonly route: string; readonly origin: string }>();

const ORIGIN = /^\d{8}[0-9a-f]{32}$/;

/**
 * True when `id` is an origin id: 8 digits (a UTC date) and 32 lowercase hex characters.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { isOriginId } from "./route.ts";
 * assert(isOriginId("2023032808d82ebe2c0d4e5aa9ca96b3813bdd25"));
 * ```
 */
export function isOriginId(id: unknown): boolean {
  return typeof id === "string" && ORIGIN.test(id);
}

/**
 * A new origin id: today's UTC date as `yyyyMMdd`, then 32 hex characters, random or, when
 * `appId` is given, the first 32 hex characters of its SHA-256 (stable across restarts).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { isOriginId, newOriginId } from "./route.ts";
 * assert(isOriginId(newOriginId()));
 * ```
 */
export function newOriginId(appId?: string, now: Date = new Date()): string {
  const date = now.toISOString().slice(0, 10).replaceAll("-", "");
  const hex = appId === undefined
    ? randomHex32()
    : createHash("sha256").update(appId).digest("hex").slice(0, 32);
  return date + hex;
}
