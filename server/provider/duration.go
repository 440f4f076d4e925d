package provider

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration in YAML that also accepts days ("30d"),
// and whose bad value is reported with its field and line among the
// configuration's other problems.
type Duration time.Duration

// UnmarshalText parses "90s", "12h" or "30d".
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a duration; write it like 30d, 12h or 90s", s)
		}
		*d = Duration(n * float64(24*time.Hour))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it like 30d, 12h or 90s", s)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalYAML parses a duration as UnmarshalText does, but reports a
// bad value as a type error, so that it is listed with the other problems
// of the file and with its field, instead of ending the decoding.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal %s into a duration; write it like 30d, 12h or 90s", n.Line, n.ShortTag())}}
	}
	if err := d.UnmarshalText([]byte(n.Value)); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	return nil
}

// MarshalText writes the duration the way Go prints it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
