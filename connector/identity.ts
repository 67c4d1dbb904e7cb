/**
 * Which identity secret this instance proves its origin with (see protocol/credentials.ts for
 * what the monitors keep of it).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { AppConfig } from "../bus/config.ts";
import { defaultIdentityDir, keptIdentity } from "./_kept_identity.ts";

/**
 * This instance's identity secret: `mesh.identity.secret` (environment `MESH_IDENTITY_SECRET`)
 * when set. Else, for an instance with a fixed `appId`, the secret kept for it in
 * `mesh.identity.dir` (`~/.minimesh/identity` by default), so that the process started again
 * after a crash on the same machine takes its origin back at once; else 32 random bytes, new in
 * every process. Never logged.
 */
export function identitySecret(config: AppConfig, appId?: string): string {
  const given = config.getString("mesh.identity.secret");
  if (given) return given;
  const kept = appId === undefined
    ? undefined
    : keptIdentity(config.getString("mesh.identity.dir") ?? defaultIdentityDir(), appId);
  return kept ?? Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
}
