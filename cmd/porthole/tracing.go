package main

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/porthole-chat/porthole/server"
)

// startTracing installs the OpenTelemetry tracer provider the config
// asks for: spans batched to an OTLP/HTTP collector at
// tracing.endpoint, sampled at tracing.sample_ratio. With tracing off it
// installs nothing, so the server's spans stay on the global no-op
// provider and cost nothing. The returned stop flushes what is batched
// and shuts the exporter down; serve calls it on exit, after the server
// stopped, so that the spans of the last messages are sent.
//
// The exporter also reads the standard OTEL_EXPORTER_OTLP_* variables
// (headers such as an API key, timeout, compression, certificates) and
// the batch processor the OTEL_BSP_* ones; the endpoint in the config
// wins over OTEL_EXPORTER_OTLP_ENDPOINT.
func startTracing(cfg server.TracingConfig, log *slog.Logger) (stop func(context.Context) error, err error) {
	if !cfg.Enabled() {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(tracesURL(cfg.Endpoint)))
	if err != nil {
		return nil, err
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		attribute.String("service.name", cfg.Service()),
		attribute.String("service.version", version),
	))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Ratio()))),
	)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("cannot export traces", "endpoint", cfg.Endpoint, "error", err)
	}))
	otel.SetTracerProvider(tp)
	log.Info("tracing on", "endpoint", cfg.Endpoint, "sample_ratio", cfg.Ratio(), "service_name", cfg.Service())
	return tp.Shutdown, nil
}

// tracesURL is the OTLP/HTTP traces URL of a collector's base URL: its
// /v1/traces, as OTEL_EXPORTER_OTLP_ENDPOINT means it; a URL already
// ending in /v1/traces is kept.
func tracesURL(endpoint string) string {
	e := strings.TrimSuffix(endpoint, "/")
	if strings.HasSuffix(e, "/v1/traces") {
		return e
	}
	return e + "/v1/traces"
}

// flushTraces runs stop (startTracing's) with a bound, so that a
// collector that is down delays the exit by at most 5 s.
func flushTraces(stop func(context.Context) error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := stop(ctx); err != nil {
		log.Warn("traces not all sent at exit", "error", err)
	}
}
