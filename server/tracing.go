package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/porthole-chat/porthole/server/provider"
	"github.com/porthole-chat/porthole/widget"
)

// TracingConfig turns on OpenTelemetry traces of each message's path
// (socket, store, upstream call, platform callback, socket write),
// exported over OTLP/HTTP. Off unless Endpoint is set: then the global
// no-op tracer provider stays in place and a span costs nothing.
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP collector base URL, such as
	// http://collector:4318; spans go to its /v1/traces. Empty: off.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of traces kept, 0 to 1, decided at each
	// root span (a child follows its parent). Default 1: all of them.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute. Default
	// "porthole".
	ServiceName string `yaml:"service_name"`
}

// DefaultServiceName is the service.name of the traces when the config
// names none.
const DefaultServiceName = "porthole"

// Enabled reports whether traces are exported.
func (t TracingConfig) Enabled() bool { return t.Endpoint != "" }

// Ratio is the sample ratio, 1 unless set.
func (t TracingConfig) Ratio() float64 {
	if t.SampleRatio == nil {
		return 1
	}
	return *t.SampleRatio
}

// Service is the service name, DefaultServiceName unless set.
func (t TracingConfig) Service() string {
	if t.ServiceName == "" {
		return DefaultServiceName
	}
	return t.ServiceName
}

// check returns the tracing block's problems, each naming its field.
func (t TracingConfig) check() []error {
	var errs []error
	if t.Endpoint != "" {
		u, err := url.Parse(t.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			errs = append(errs, fmt.Errorf("tracing.endpoint: %q is not an OTLP/HTTP collector URL; write it like http://collector:4318 (scheme http or https, host and port; spans go to its /v1/traces)", t.Endpoint))
		case u.User != nil:
			errs = append(errs, errors.New("tracing.endpoint: holds a user or password; send credentials with the OTEL_EXPORTER_OTLP_HEADERS environment variable instead"))
		case u.RawQuery != "" || u.Fragment != "":
			errs = append(errs, fmt.Errorf("tracing.endpoint: %q has a query or fragment; write only scheme, host, port and an optional path prefix", t.Endpoint))
		}
	}
	if r := t.SampleRatio; r != nil && (math.IsNaN(*r) || *r < 0 || *r > 1) {
		errs = append(errs, fmt.Errorf("tracing.sample_ratio: %v is out of range; use a number from 0 (none) to 1 (every trace), e.g. 0.1", *r))
	}
	return errs
}

// tracer makes Porthole's spans. It comes from the global provider,
// which forwards to the one cmd/porthole installs when tracing is on;
// otherwise it stays the no-op one and a span costs next to nothing.
var tracer = otel.Tracer("github.com/porthole-chat/porthole/server")

// Span attribute keys. A span never holds a message's text, a token or a
// secret: ids, sequence numbers, kinds, outcomes.
const (
	attrBotKey      = attribute.Key("porthole.bot")
	attrConvKey     = attribute.Key("porthole.conversation")
	attrSeqKey      = attribute.Key("porthole.seq")
	attrClientIDKey = attribute.Key("porthole.client_id")
	attrKindKey     = attribute.Key("porthole.kind")
	attrReasonKey   = attribute.Key("porthole.reason")
)

// noSpan is what a child helper returns without a parent: a span on
// no trace is noise (a status publish after a delivery, say).
var noSpan = noop.Span{}

// traceSend starts the root span of a visitor's send (or postback)
// frame. The returned end sets the conversation, which the first
// message creates, and ends the span.
func (so *socket) traceSend(ctx context.Context, id, kind string) (context.Context, func()) {
	ctx, span := tracer.Start(ctx, "porthole.send", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithNewRoot(),
		trace.WithAttributes(attrBotKey.String(so.bot().Config.ID), attrClientIDKey.String(id), attrKindKey.String(kind)))
	return ctx, func() {
		if span.IsRecording() {
			span.SetAttributes(attrConvKey.String(so.conv.ID))
		}
		span.End()
	}
}

// traceReply marks the span of ctx (a send) failed when the frame
// answering it is an error frame, with its protocol code as the reason.
func traceReply(ctx context.Context, f widget.Frame) {
	if ef, ok := f.(*widget.ErrorFrame); ok {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			fail(span, ef.Code, errors.New(ef.Code))
		}
	}
}

// fail records err on span with a reason code and the Error status.
// err is one of ours or the store's; none holds a secret.
func fail(span trace.Span, reason string, err error) {
	span.SetAttributes(attrReasonKey.String(reason))
	span.RecordError(err)
	span.SetStatus(codes.Error, reason)
}

// startChild starts a span under the one in ctx, or none when ctx has
// no span: a store write or a publish is traced as part of a message's
// path, never on its own.
func startChild(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, noSpan
	}
	return tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
}

// traceAppend starts the span of a store append of conv's message.
func traceAppend(ctx context.Context, conv string) (context.Context, trace.Span) {
	return startChild(ctx, "porthole.store.append", attrConvKey.String(conv))
}

// endAppend ends a store append span with its outcome.
func endAppend(span trace.Span, seq uint64, dup bool, err error) {
	if span.IsRecording() {
		if err != nil {
			fail(span, "store_error", err)
		} else {
			span.SetAttributes(attrSeqKey.Int64(int64(seq)), attribute.Bool("porthole.duplicate", dup))
		}
	}
	span.End()
}

// endPost ends the store append of a visitor's message, and puts its
// seq (the one the ack carries) on the send span in ctx too.
func endPost(ctx context.Context, span trace.Span, seq uint64, dup bool, err error) {
	endAppend(span, seq, dup, err)
	if parent := trace.SpanFromContext(ctx); err == nil && parent.IsRecording() {
		parent.SetAttributes(attrSeqKey.Int64(int64(seq)))
	}
}

// tracePublish starts the span of a bus publish about conv.
func tracePublish(ctx context.Context, conv string) (context.Context, trace.Span) {
	return startChild(ctx, "porthole.bus.publish", attrConvKey.String(conv))
}

// endSpan ends span, recording err with reason when there is one.
func endSpan(span trace.Span, reason string, err error) {
	if err != nil && span.IsRecording() {
		fail(span, reason, err)
	}
	span.End()
}

// traceUpstream starts the span of one upstream call. It runs on the
// dispatcher, after the send that stored the message was answered, so
// it is a root of its own linked to that send's span (link, when the
// message was queued by this process's send).
func traceUpstream(ctx context.Context, bot, conv string, seq uint64, kind provider.Kind, attempt int, link trace.SpanContext) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindClient), trace.WithNewRoot(),
		trace.WithAttributes(attrBotKey.String(bot), attrConvKey.String(conv), attrSeqKey.Int64(int64(seq)),
			attrKindKey.String(string(kind)), attribute.Int("porthole.attempt", attempt)),
	}
	if link.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: link}))
	}
	return tracer.Start(ctx, "porthole.upstream", opts...)
}

// endUpstream ends an upstream span with the call's outcome: the reason
// provider.Classify gives (4xx, 429, 5xx, timeout…), never the body.
func endUpstream(span trace.Span, err error) {
	if span.IsRecording() {
		if err == nil {
			span.SetAttributes(attrReasonKey.String("ok"))
		} else {
			reason, temporary, _ := provider.Classify(err)
			span.SetAttributes(attribute.Bool("porthole.temporary", temporary))
			fail(span, reason, errors.New(reason))
		}
	}
	span.End()
}

// traceHook starts the root span of a platform's callback to bot and
// wraps w to see the status answered; the returned end records it on
// the span.
func traceHook(w http.ResponseWriter, r *http.Request, bot, prov string) (http.ResponseWriter, *http.Request, func()) {
	ctx, span := tracer.Start(r.Context(), "porthole.callback", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithNewRoot(),
		trace.WithAttributes(attrBotKey.String(bot), attribute.String("porthole.provider", prov)))
	if !span.IsRecording() {
		return w, r, func() { span.End() }
	}
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	return rec, r.WithContext(ctx), func() {
		span.SetAttributes(attribute.Int("http.response.status_code", rec.status))
		if rec.status >= 400 {
			reason := "http_" + strconv.Itoa(rec.status)
			span.SetAttributes(attrReasonKey.String(reason))
			if rec.status >= 500 { // a 4xx is the caller's: the span did not fail (OTel HTTP conventions)
				span.SetStatus(codes.Error, reason)
			}
		}
		span.End()
	}
}

// traceWrite starts the span of writing a message frame to a visitor's
// socket: the end of the path. It is a root of its own: the message came
// through the bus, which carries no trace context.
func (so *socket) traceWrite(ctx context.Context, f widget.Frame) (context.Context, trace.Span) {
	m, ok := f.(*widget.Msg)
	if !ok {
		return ctx, noSpan
	}
	return tracer.Start(ctx, "porthole.socket.write", trace.WithSpanKind(trace.SpanKindProducer), trace.WithNewRoot(),
		// No conversation id: so.conv belongs to the reader (a login
		// switches it) and the writer reads it only under so.mu.
		trace.WithAttributes(attrBotKey.String(so.botID),
			attrSeqKey.Int64(int64(m.Seq)), attribute.String("porthole.from", m.From)))
}

// link keeps the span of the send that stored seq on its item, for the
// upstream span to link to. s.mu must be held.
func (q *queue) link(seq uint64, from []trace.SpanContext) {
	if len(from) == 0 || !from[0].IsValid() {
		return
	}
	for _, it := range q.items {
		if it.seq == seq {
			it.link = from[0]
		}
	}
}
