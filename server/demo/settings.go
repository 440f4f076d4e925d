package demo

import (
	"fmt"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
)

// DefaultTypingDelay is how long the typing indicator shows before each
// reply when the configuration says nothing.
const DefaultTypingDelay = 600 * time.Millisecond

// Settings is the `demo:` block of a bot with provider demo.
type Settings struct {
	// Script is a YAML script file; empty means the built-in script.
	Script string `yaml:"script"`
	// TypingDelay is how long the typing indicator shows before each
	// reply. Default 600ms.
	TypingDelay provider.Duration `yaml:"typing_delay"`
}

// ApplyDefaults fills in the typing delay.
func (s *Settings) ApplyDefaults() {
	if s.TypingDelay == 0 {
		s.TypingDelay = provider.Duration(DefaultTypingDelay)
	}
}

// Validate reports what is wrong with the settings, under prefix.
func (s *Settings) Validate(prefix string) []error {
	if s.TypingDelay < 0 {
		return []error{fmt.Errorf("%s.typing_delay: must not be negative; e.g. 600ms", prefix)}
	}
	return nil
}
