# Porthole: `make run` starts the server with the built-in demo bot,
# `make test` runs every test. Nothing else is needed on a fresh machine
# beyond Go (the templ generator, esbuild and brotli are go.mod modules).

GO      ?= go
BIN     := bin/porthole
DATA    ?= ./data
LISTEN  ?= :8080
DIST    := web/static/dist

# The widget assets are rebuilt when anything that goes into them
# changes: the browser program, the shared widget code, the loader and
# its CSS, the build program itself, or the module versions.
WASM_INPUTS := $(shell find wasm widget web/loader web/build -type f ! -name '*_test.go' 2>/dev/null) go.mod go.sum

.PHONY: run build test check generate wasm size bench fmt clean image image-test

## run: build and start the server with the demo bot on http://localhost:8080
run: build
	./$(BIN) serve --listen $(LISTEN) --data $(DATA)

## build: compile the porthole binary into bin/, with the widget assets embedded
build: generate wasm
	$(GO) build -trimpath -o $(BIN) ./cmd/porthole

## wasm: build the widget assets into web/static/dist when their inputs changed
wasm: $(DIST)/manifest.json

$(DIST)/manifest.json: $(WASM_INPUTS)
	$(GO) run ./web/build -go $(GO)

## size: build the widget assets, print their sizes, fail when one is over budget
size:
	$(GO) run ./web/build -size -go $(GO)

## generate: regenerate templ components (*_templ.go) and the chat pages' minified stylesheet (web/chat.min.css), both committed
generate:
	$(GO) tool templ generate
	$(GO) run ./web/build -chatcss

## check: formatting, templ output up to date, go vet (native and wasm)
check: generate
	@unformatted=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./wasm/... ./widget/... ./web/build/floor/

## test: every test with the race detector (the embedded assets included), the widget package again as the browser runs it (wasm under Node), the server tests again with the dispatcher shared as on Redis, then the size budgets
test: check wasm
	$(GO) test -race -count=1 -timeout 25m ./...
	GOOS=js GOARCH=wasm PATH="$$($(GO) env GOROOT)/lib/wasm:$$PATH" $(GO) test -count=1 ./widget/
	PORTHOLE_TEST_SHARED=1 $(GO) test -race -count=1 ./server/
	$(GO) run ./web/build -size -go $(GO)

# The container image (see Containerfile): built with podman FROM
# scratch, from a static binary and the host's CA certificates. Docker
# format, since OCI images drop HEALTHCHECK; no intermediate layers kept
# (each is a COPY of files make just wrote, nothing worth caching).
IMAGE     ?= porthole:dev
PODMAN    ?= podman
IMAGE_CTX := bin/image
CA_CERTS  ?= /etc/ssl/certs/ca-certificates.crt
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

## image: build the container image $(IMAGE): the static binary with the assets embedded, CA certificates, a non-root user
image: generate wasm
	@test -r $(CA_CERTS) || { echo "no CA certificates at $(CA_CERTS): install ca-certificates or set CA_CERTS=FILE"; exit 1; }
	rm -rf $(IMAGE_CTX) && mkdir -p $(IMAGE_CTX)/data
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(IMAGE_CTX)/porthole ./cmd/porthole
	cp $(CA_CERTS) $(IMAGE_CTX)/ca-certificates.crt
	$(PODMAN) build --layers=false --format docker --label org.opencontainers.image.version=$(VERSION) -f Containerfile -t $(IMAGE) $(IMAGE_CTX)

## image-test: build the image, run it, check from outside that /readyz answers and that it runs as non-root (what CI runs)
image-test:
	deploy/image-test.sh

## bench: the benchmarks quoted in the README and closing notes
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./server/ ./server/store/ ./widget/

fmt:
	gofmt -w $$(git ls-files --cached --others --exclude-standard '*.go')

clean:
	rm -rf bin $(DIST)
