/**
 * `system.service.query`, the Java original's private route for questions about the mesh
 * (`ServiceQuery.java`), served the same way so that code ported from Java finds it: `type=info`,
 * `type=download` (the routing table, as `/info/routes` shows it under `network`), `type=find`
 * with `route` (true when it exists here or in the mesh; `route=*` with a list body: all of them)
 * and `type=search` with `route` (the origins that serve it).
 *
 * @module
 */
import { AppError } from "../bus/errors.ts";
import type { Platform } from "../bus/platform.ts";
import { PostOffice } from "../bus/post_office.ts";
import type { LambdaFunction } from "../bus/types.ts";

/** The route, private as in the Java original. */
export const SERVICE_QUERY = "system.service.query";

/** The function behind {@link SERVICE_QUERY}; `download()` gives the routing table. */
export function serviceQuery(
  platform: Platform,
  personality: string,
  download: () => Record<string, unknown>,
): LambdaFunction<unknown, unknown> {
  return (headers, body) => {
    const po = new PostOffice({}, platform);
    switch (headers.type) {
      case "info":
        return {
          personality,
          version: platform.version,
          name: platform.name,
          origin: platform.origin,
        };
      case "download":
        return download();
      case "find":
        if (headers.route === undefined) break;
        if (headers.route !== "*") return po.exists(headers.route);
        return Array.isArray(body) && body.every((r) => typeof r === "string") &&
          po.exists(...body);
      case "search":
        if (headers.route === undefined) break;
        return po.search(headers.route);
    }
    throw new AppError(
      400,
      "Usage: type=download, info, (type=find, route=route_name) or (type=search, route=route_name)",
    );
  };
}
