// The OpenTelemetry SDK's in-memory span exporter, registered as the global tracer provider:
// call it before creating the platforms under test (they look for an SDK when created).
import { trace } from "@opentelemetry/api";
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from "@opentelemetry/sdk-trace";

/** A W3C trace id and client span id for tests that start a trace with `traceparent`. */
export const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
export const CLIENT_SPAN = "00f067aa0ba902b7";

/** Registers a tracer provider that keeps every finished span in memory. */
export function recordSpans(): { spans: InMemorySpanExporter; provider: TracerProvider } {
  const spans = new InMemorySpanExporter();
  const provider = new TracerProvider({
    spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
  });
  trace.setGlobalTracerProvider(provider);
  return { spans, provider };
}
