package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot/chataibottest"
	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
)

// Credentials of the emulators as `porthole sim` runs them. They are not
// secrets: they open nothing but the emulators on this machine, and the
// example configs in examples/ use the same values.
const (
	simChatAIBotSecret = "porthole-sim-webhook-secret"
)

// sim runs the bot platforms' emulators on local ports, calling back the
// porthole server at --proxy, so that the examples/*-sim.yaml configs can
// be tried by hand without any platform account.
func sim(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	proxy := fs.String("proxy", "http://127.0.0.1:8080", "`origin` of the porthole server the emulators call back")
	clAddr := fs.String("chatlayer", "127.0.0.1:9101", "listen `address` of the Chatlayer emulator (empty: off)")
	clBot := fs.String("chatlayer-bot", "acme", "bot `id` whose webhook the Chatlayer emulator calls")
	aiAddr := fs.String("chataibot", "127.0.0.1:9102", "listen `address` of the ChatAIBot emulator (empty: off)")
	aiBot := fs.String("chataibot-bot", "shop", "bot `id` whose webhook the ChatAIBot emulator calls")
	if err := fs.Parse(args); err != nil {
		return err
	}
	proxyURL := strings.TrimSuffix(*proxy, "/")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var servers []*http.Server
	serve := func(name, addr string, h http.Handler) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("%s emulator: listen on %s: %w (pick another with --%s)", name, addr, err, name)
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, hs)
		go hs.Serve(ln)
		return "http://" + ln.Addr().String(), nil
	}
	if *clAddr != "" {
		e := chatlayertest.New(chatlayertest.Options{MediaBase: proxyURL + "/static/demo", ReplyDelay: 400 * time.Millisecond})
		defer e.Close()
		url, err := serve("chatlayer", *clAddr, e.Handler())
		if err != nil {
			return err
		}
		e.URL = url
		e.SetCallback(proxyURL + "/hooks/chatlayer/" + *clBot)
		fmt.Fprintf(stderr, "Chatlayer emulator on %s, calling back %s/hooks/chatlayer/%s\n", url, proxyURL, *clBot)
	}
	if *aiAddr != "" {
		e := chataibottest.New(chataibottest.Options{MediaBase: proxyURL + "/static/demo"})
		defer e.Close()
		url, err := serve("chataibot", *aiAddr, e.Handler())
		if err != nil {
			return err
		}
		e.URL = url
		e.SetCallback(proxyURL+"/hooks/chataibot/"+*aiBot, simChatAIBotSecret)
		fmt.Fprintf(stderr, "ChatAIBot emulator on %s, calling back %s/hooks/chataibot/%s\n", url, proxyURL, *aiBot)
	}
	if len(servers) == 0 {
		return errors.New("no emulator to run; give --chatlayer or --chataibot an address")
	}
	fmt.Fprintln(stderr, "Now run: porthole serve --config examples/chatlayer-sim.yaml (or chataibot-sim.yaml); Ctrl-C stops the emulators")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, hs := range servers {
		hs.Shutdown(sctx)
	}
	return nil
}
