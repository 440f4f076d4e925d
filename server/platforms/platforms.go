// Package platforms registers the bot platforms Porthole ships with
// (provider.Register), so that the server, which names none of them,
// can make their providers from a bot's configuration. cmd/porthole
// calls Register before it reads the configuration.
package platforms

import (
	"fmt"
	"sync"
	"time"

	"github.com/porthole-chat/porthole/server/chataibot"
	"github.com/porthole-chat/porthole/server/chatlayer"
	"github.com/porthole-chat/porthole/server/demo"
	"github.com/porthole-chat/porthole/server/provider"
)

var once sync.Once

// Register registers demo, chatlayer and chataibot; calling it again
// does nothing. Their text formats: Chatlayer's knowledge-base answers
// and ChatAIBot's AI steps write Markdown, so both default to markdown.
// The demo bot defaults to plain: its script (the built-in one and the
// ones written for it so far) is plain text, in which a "*" or a line
// starting "1." would change meaning, and its {{name}} templates put
// what the visitor typed into replies, which plain keeps as typed. A
// script written in Markdown sets text_format: markdown.
func Register() {
	once.Do(func() {
		provider.Register(provider.Platform{
			Name:       "demo",
			TextFormat: provider.FormatPlain,
			Settings:   func() provider.Settings { return &demo.Settings{} },
			New: func(s provider.Settings, env provider.Env) (provider.Provider, error) {
				ds := s.(*demo.Settings)
				script := demo.Default()
				if ds.Script != "" {
					var err error
					if script, err = demo.Load(ds.Script); err != nil {
						return nil, fmt.Errorf("demo.script: %w", err)
					}
				}
				return demo.New(script, env.Sink, demo.Options{TypingDelay: time.Duration(ds.TypingDelay), BaseURL: env.BaseURL, Log: env.Log}), nil
			},
		})
		provider.Register(provider.Platform{
			Name:       "chatlayer",
			TextFormat: provider.FormatMarkdown,
			Settings:   func() provider.Settings { return &chatlayer.Config{} },
			New: func(s provider.Settings, env provider.Env) (provider.Provider, error) {
				return chatlayer.New(*s.(*chatlayer.Config), env.Bot, env.Sink, env.Upstream, env.Log)
			},
		})
		provider.Register(provider.Platform{
			Name:       "chataibot",
			TextFormat: provider.FormatMarkdown,
			Settings:   func() provider.Settings { return &chataibot.Config{} },
			New: func(s provider.Settings, env provider.Env) (provider.Provider, error) {
				return chataibot.New(*s.(*chataibot.Config), env.Bot, env.Sink, env.Upstream, env.Log, env.Links)
			},
		})
	})
}
