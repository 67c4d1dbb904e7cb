/**
 * Who may call which HTTP endpoint of an application or a monitor.
 *
 * - `/api/event` (Event over HTTP): with `api.tokens` set (environment `API_TOKENS`; a comma-
 *   separated list, never logged), a request needs `Authorization: Bearer <one of them>`.
 * - The informational endpoints (`/info`, `/info/lib`, `/info/routes`, `/env`, `/metrics`, a
 *   monitor's dashboard): with `protect.info.endpoints=true`, a request needs a valid bearer
 *   token of `api.tokens`. Without tokens it needs, as in the Java original, the header
 *   `X-App-Instance: <this instance's origin>`; that origin is no secret (`/health` shows it), so
 *   it never stands in for a configured token.
 * - `/health` and `/livenessprobe` stay open (orchestrators probe them).
 * - An application may add its own check (`authorize` in the options of `startHttp` /
 *   `actuatorHandler`), for both kinds: a request passes when the configured rule (if any) and
 *   its check both let it.
 *
 * A refused request gets 401 with `WWW-Authenticate: Bearer` and no detail.
 *
 * @module
 */
import type { Platform } from "../bus/platform.ts";
import { secretMatcher } from "../bus/secrets.ts";
import { jsonError } from "./responses.ts";

/** Which kind of endpoint a request is for. */
export type EndpointKind = "event" | "info";

/**
 * An application's own check: true lets the request through. Called only for the protected
 * kinds of endpoint.
 */
export type AuthorizeRequest = (
  req: Request,
  kind: EndpointKind,
) => boolean | Promise<boolean>;

/**
 * The access rule of a platform's endpoints: returns a 401 response for a request that may not
 * pass, or undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { Platform } from "@minimesh/core";
 * import { accessRule } from "./access.ts";
 * const platform = new Platform({ dir: "/nonexistent", args: ["-Dapi.tokens=t0ken"], env: {} });
 * const check = accessRule(platform);
 * const call = (auth?: string) =>
 *   new Request("http://x/api/event", { headers: auth ? { authorization: auth } : {} });
 * assert.equal((await check(call(), "event"))?.status, 401);
 * assert.equal(await check(call("Bearer t0ken"), "event"), undefined);
 * ```
 */
export function accessRule(
  platform: Platform,
  authorize?: AuthorizeRequest,
): (req: Request, kind: EndpointKind) => Promise<Response | undefined> {
  const tokens = platform.config.getList("api.tokens");
  const matches = secretMatcher(tokens);
  const protectInfo = platform.config.getBoolean("protect.info.endpoints", false);
  const bearer = (req: Request) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "");
    return m ? matches(m[1]) : false;
  };
  const refuse = () => {
    const res = jsonError(401, "Unauthorized");
    res.headers.set("www-authenticate", "Bearer");
    return res;
  };
  return async (req, kind) => {
    const byRule = kind === "event" ? tokens.length === 0 || bearer(req) : !protectInfo ||
      (tokens.length > 0 ? bearer(req) : req.headers.get("x-app-instance") === platform.origin);
    if (!byRule) return refuse();
    if (authorize !== undefined && !(await authorize(req, kind))) return refuse();
    return undefined;
  };
}
