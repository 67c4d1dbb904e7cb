// What an event from outside the process (Event over HTTP, a Kafka record) may ask for. Both
// entry points call this one rule before they deliver, so that a stranger reaches no more
// through a reply address than through the event's own `to`.
//
// A reply goes where the event's `replyTo` says, with the answering function's output as its
// body: a `replyTo` naming a private route would run that route with a body of the stranger's
// choosing, and one naming this instance's inbox would complete another caller's request.
import { splitAddress } from "./route.ts";
import { TEMPORARY_INBOX } from "./platform.ts";
import type { Platform } from "./platform.ts";

/**
 * Why an event from outside may not have its replies sent to `replyTo`; undefined when it may.
 *
 * Allowed: a public route (served here or advertised by the mesh), `route@origin` of another
 * instance (which applies this rule to what it receives), and another instance's inbox
 * (`temporary.inbox@<origin>`, how every mesh request asks for its reply). Refused: this
 * instance's inbox in any form (its waiting requests are completed only by the replies they
 * asked for), private and system routes, and routes nothing serves.
 */
export function outsideReplyProblem(platform: Platform, replyTo: string): string | undefined {
  const { route, origin } = splitAddress(replyTo);
  if (origin !== undefined && origin !== platform.origin) {
    // Not whether the mesh reaches it now: a request that arrives while the presence session
    // reconnects must still run. The reply finds its instance or is logged as undelivered.
    return platform.mesh !== undefined ? undefined : `Reply address ${replyTo} is unknown`;
  }
  if (route === TEMPORARY_INBOX) return `Reply address ${replyTo} is reserved`;
  if (platform.hasRoute(route)) {
    return platform.isPrivate(route) ? `Reply address ${replyTo} is not a public route` : undefined;
  }
  if (origin === undefined && platform.mesh?.reaches(route)) return undefined;
  return `Reply address ${replyTo} is not a public route`;
}
