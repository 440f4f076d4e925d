package provider

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
)

// Platform is a bot platform the binary plugs in: cmd/porthole registers
// each one (server/platforms), and the server knows them only through
// this, so that it names none of them and a new platform is one package
// and one line of wiring.
type Platform struct {
	// Name is the bots[].provider value in the configuration, and the
	// key of the bot's block of platform settings (`chatlayer:`).
	Name string
	// Settings returns the value a bot's block decodes into, with the
	// platform's defaults applied by the decoder's caller
	// (SettingsDefaults); it is made even when the block is missing.
	Settings func() Settings
	// TextFormat is the format of the text the platform's bots write,
	// the default of a bot's text_format: FormatMarkdown or FormatPlain
	// (empty is plain).
	TextFormat string
	// New makes the provider of one bot from its settings. A provider
	// that holds resources implements io.Closer; the server closes it
	// at shutdown.
	New func(s Settings, env Env) (Provider, error)
}

// The text formats of a bot's replies (BotConfig.TextFormat in the
// server): Markdown is formatted by the server (server/markdown), plain
// text is shown as it is, with its links detected.
const (
	FormatMarkdown = "markdown"
	FormatPlain    = "plain"
)

// Settings is a bot's block of platform settings, decoded from the
// configuration.
type Settings interface {
	// Validate reports every problem at once, each as an error that
	// starts with its path under prefix (prefix+".token: ...") and says
	// what to write instead.
	Validate(prefix string) []error
}

// SettingsDefaults is implemented by Settings that fill in defaults once
// decoded.
type SettingsDefaults interface {
	ApplyDefaults()
}

// Env is what the server gives a provider.
type Env struct {
	Bot      string
	Sink     Sink
	Upstream *Upstream
	Log      *slog.Logger
	// BaseURL is the server's public base URL, without a trailing
	// slash, for links to what the server itself serves.
	BaseURL string
	// Links maps the platform's conversation ids to ours durably.
	Links Links
}

// Links maps a platform's own conversation (or user) ids to Porthole's
// conversations durably, so that a callback naming only the platform's
// id finds its conversation after a restart, and on another instance.
type Links interface {
	// Link records that the platform's ref is conversation conv.
	Link(ctx context.Context, ref, conv string) error
	// Resolve returns the conversation linked to ref, or an error
	// matching ErrUnknownConversation for an id never linked.
	Resolve(ctx context.Context, ref string) (string, error)
}

var (
	platformsMu sync.RWMutex
	platforms   = map[string]Platform{}
)

// Register makes platform p known by its name. Registering a name twice
// panics: it is a wiring mistake, found at start.
func Register(p Platform) {
	platformsMu.Lock()
	defer platformsMu.Unlock()
	if _, dup := platforms[p.Name]; dup {
		panic(fmt.Sprintf("provider: platform %q registered twice", p.Name))
	}
	platforms[p.Name] = p
}

// Lookup returns the platform registered under name.
func Lookup(name string) (Platform, bool) {
	platformsMu.RLock()
	defer platformsMu.RUnlock()
	p, ok := platforms[name]
	return p, ok
}

// Names returns the names of the registered platforms, sorted.
func Names() []string {
	platformsMu.RLock()
	defer platformsMu.RUnlock()
	var out []string
	for n := range platforms {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
