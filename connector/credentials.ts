/**
 * Mesh credentials on the presence websocket: an application presents its token in the
 * websocket handshake as a subprotocol (`minimesh.v1` and `minimesh.token.<base64url>`), which
 * every runtime's WebSocket client can send and no URL, proxy log or query string carries.
 * A monitor configured with tokens (`mesh.tokens`) checks it before the session exists, in
 * constant time, and closes a connection without a valid one with {@link UNAUTHORIZED}.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { AppConfig } from "../bus/config.ts";
import { secretMatcher } from "../bus/secrets.ts";

/** The subprotocol a monitor selects (and that carries no secret). */
export const MESH_PROTOCOL = "minimesh.v1";
const TOKEN_PREFIX = "minimesh.token.";
/** The close code of a websocket refused for its credential (a private-use code). */
export const UNAUTHORIZED = 4401;

/**
 * `mesh.tokens` (environment `MESH_TOKENS`): comma-separated tokens. A monitor accepts any of
 * them (so that a token can be rotated without a pause); an application presents the first.
 * Never logged.
 */
export function meshTokens(config: AppConfig): string[] {
  return config.getList("mesh.tokens");
}

/** The subprotocols an application offers: the protocol, and its token when it has one. */
export function credentialProtocols(token: string | undefined): string[] {
  if (!token) return [];
  return [MESH_PROTOCOL, TOKEN_PREFIX + Buffer.from(token, "utf8").toString("base64url")];
}

/**
 * Checks the token offered in `protocols` against the configured ones, in constant time (see
 * `bus/secrets.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { credentialProtocols, tokenChecker } from "./credentials.ts";
 * const check = tokenChecker(["s3cret", "next"]);
 * assert.equal(check(credentialProtocols("next")), true);
 * assert.equal(check(credentialProtocols("guess")), false);
 * assert.equal(check([]), false);
 * ```
 */
export function tokenChecker(tokens: readonly string[]): (protocols: readonly string[]) => boolean {
  const matches = secretMatcher(tokens);
  return (protocols) => {
    const offered = protocols.find((p) => p.startsWith(TOKEN_PREFIX));
    return offered !== undefined &&
      matches(Buffer.from(offered.slice(TOKEN_PREFIX.length), "base64url"));
  };
}
