# Porthole: `make run` starts the server with the built-in demo bot,
# `make test` runs every test. Nothing else is needed on a fresh machine
# beyond Go (the templ generator is a go.mod tool).

GO      ?= go
BIN     := bin/porthole
DATA    ?= ./data
LISTEN  ?= :8080

.PHONY: run build test check generate bench fmt clean

## run: build and start the server with the demo bot on http://localhost:8080
run: build
	./$(BIN) serve --listen $(LISTEN) --data $(DATA)

## build: compile the porthole binary into bin/
build: generate
	$(GO) build -trimpath -o $(BIN) ./cmd/porthole

## generate: regenerate templ components (*_templ.go, committed)
generate:
	$(GO) tool templ generate

## check: formatting, templ output up to date, go vet (native and wasm)
check: generate
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./widget/...

## test: every test, with the race detector
test: check
	$(GO) test -race -count=1 ./...

## bench: the benchmarks quoted in the README and closing notes
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./server/ ./server/store/ ./widget/

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
