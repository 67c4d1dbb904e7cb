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
import { createHash } from "node:crypto";
import type { AppConfig } from "../bus/config.ts";
import { secretIndex } from "../bus/secrets.ts";

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

/**
 * The subprotocols an application offers: the protocol, and its token when it has one. A
 * minimesh monitor selects the protocol; a Java one selects none, and is then sent no
 * identity secret (it would show it in its `/info`).
 */
export function credentialProtocols(token: string | undefined): string[] {
  const protocols = [MESH_PROTOCOL];
  if (token) protocols.push(TOKEN_PREFIX + Buffer.from(token, "utf8").toString("base64url"));
  return protocols;
}

/**
 * Checks the token offered in `protocols` against the configured ones, in constant time (see
 * `bus/secrets.ts`): the position of the matching token in the list, or -1 when none matches.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { credentialProtocols, tokenChecker } from "./credentials.ts";
 * const check = tokenChecker(["s3cret", "next"]);
 * assert.equal(check(credentialProtocols("next")), 1);
 * assert.equal(check(credentialProtocols("guess")), -1);
 * assert.equal(check([]), -1);
 * ```
 */
export function tokenChecker(tokens: readonly string[]): (protocols: readonly string[]) => number {
  const indexOf = secretIndex(tokens);
  return (protocols) => {
    const offered = protocols.find((p) => p.startsWith(TOKEN_PREFIX));
    return offered === undefined
      ? -1
      : indexOf(Buffer.from(offered.slice(TOKEN_PREFIX.length), "base64url"));
  };
}

/** The close code of a websocket that claims an origin another instance owns (private-use). */
export const NOT_OWNER = 4403;
/** The `info` header that carries an instance's identity secret to its monitor. */
export const IDENTITY_HEADER = "identity";

/**
 * What monitors keep and share (on `service.monitor`) to recognise the instance that owns
 * `origin`: a SHA-256 of the origin and its secret. The secret itself stays with the monitor
 * that received it, and the digest does not reveal it.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { identityVerifier } from "./credentials.ts";
 * const v = identityVerifier("20261127abc", "secret");
 * assert.equal(v, identityVerifier("20261127abc", "secret"));
 * assert.notEqual(v, identityVerifier("20261127abd", "secret"));
 * ```
 */
export function identityVerifier(origin: string, secret: string): string {
  return createHash("sha256").update(`minimesh.identity.v1\0${origin}\0${secret}`)
    .digest("base64url");
}
