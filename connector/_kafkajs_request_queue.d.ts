// Types for the one kafkajs internal that kafka_link.ts patches (kafkajs ships none for it).
declare class RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}
export default RequestQueue;
