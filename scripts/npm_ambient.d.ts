// For the npm build only (tsc): the kafkajs internal that kafka/link.ts patches.
// (Deno types the dynamic import in kafka/_kafkajs_patch.ts by itself.)
declare module "kafkajs/src/network/requestQueue/index.js" {
  export default class RequestQueue {
    pending: unknown[];
    throttledUntil: number;
    scheduleCheckPendingRequests(): void;
  }
}
