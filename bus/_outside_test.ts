import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Platform } from "./platform.ts";
import type { MeshTransport } from "./mesh.ts";
import { splitAddress } from "./route.ts";
import { outsideReplyProblem } from "./_outside.ts";

const PEER = "20261204" + "ab".repeat(16);
const STRANGER = "20261204" + "cd".repeat(16);

// A mesh in which one peer serves `remote.public`; it knows PEER and no other instance.
function meshOf(platform: Platform): MeshTransport {
  return {
    reaches(to) {
      const { route, origin } = splitAddress(to);
      if (origin !== undefined) {
        return origin !== platform.origin && (origin === PEER || route === "temporary.inbox");
      }
      return route === "remote.public";
    },
    knows: (origin) => origin === PEER,
    origins: (route) => route === "remote.public" ? [PEER] : [],
    send: () => Promise.resolve(),
    broadcast: () => Promise.resolve(),
    routeChanged() {},
    describe: () => ({}),
  };
}

describe("outsideReplyProblem", () => {
  const platform = new Platform({ dir: "/nonexistent", args: [], env: {} });
  platform.register("local.public", () => 1);
  platform.registerPrivate("local.private", () => 1);
  platform.attachMesh(meshOf(platform));
  const me = platform.origin;

  it("allows public routes and another instance's inbox", () => {
    for (
      const to of [
        "local.public",
        `local.public@${me}`,
        "remote.public",
        `remote.public@${PEER}`,
        `temporary.inbox@${PEER}`,
        `temporary.inbox@${STRANGER}`, // a caller whose join is on its way
      ]
    ) assert.equal(outsideReplyProblem(platform, to), undefined, to);
  });

  it("refuses this instance's inbox, private and system routes, whatever the spelling", () => {
    // Generated: every refused target, bare or at this instance's origin.
    const refused = fc.constantFrom(
      "temporary.inbox",
      "local.private",
      "system.service.registry",
      "no.such.route",
    );
    fc.assert(
      fc.property(refused, fc.boolean(), (route, qualified) => {
        const to = qualified && !route.includes("@") ? `${route}@${me}` : route;
        const problem = outsideReplyProblem(platform, to);
        assert.ok(problem !== undefined && problem.includes(to), `${to}: ${problem}`);
        // Private and unknown routes read alike: a stranger learns nothing of what is here.
        assert.ok(!problem.replace(to, "").includes("private"), problem);
      }),
    );
  });

  it("never allows a local route that is not public, for any generated address", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), fc.constantFrom("", `@${me}`), (name, at) => {
        const to = name + at;
        if (outsideReplyProblem(platform, to) !== undefined) return;
        const { route } = splitAddress(to);
        const local = platform.hasRoute(route) && !splitAddress(to).origin?.startsWith(PEER);
        assert.ok(!local || !platform.isPrivate(route), to);
        assert.notEqual(route, "temporary.inbox");
      }),
      { numRuns: 2000 },
    );
  });

  it("allows no mesh address without a mesh", () => {
    const alone = new Platform({ dir: "/nonexistent", args: [], env: {} });
    assert.ok(outsideReplyProblem(alone, `temporary.inbox@${PEER}`) !== undefined);
    assert.ok(outsideReplyProblem(alone, "remote.public") !== undefined);
  });
});
