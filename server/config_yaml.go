package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/porthole-chat/porthole/server/provider"
	"go.yaml.in/yaml/v3"
)

// joinFlat joins errors like errors.Join, unpacking joined ones, so each
// problem stays one entry (and one line) of the result.
func joinFlat(errs ...error) error {
	var flat []error
	for _, err := range errs {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			flat = append(flat, j.Unwrap()...)
		} else if err != nil {
			flat = append(flat, err)
		}
	}
	return errors.Join(flat...)
}

var envRef = regexp.MustCompile(`\$\$|\$\{([^}]*)\}`)

// expandNode replaces ${VAR} in every scalar value and records unset or
// malformed references with the path of the field that holds them.
func expandNode(n *yaml.Node, path string, lookup func(string) (string, bool), problems *[]error) {
	switch n.Kind {
	case yaml.MappingNode:
		// Block style puts every node of the re-marshaled document on a
		// line of its own, so that decodeError can tell which it means.
		n.Style &^= yaml.FlowStyle
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := key
			if path != "" {
				p = path + "." + key
			}
			expandNode(n.Content[i+1], p, lookup, problems)
		}
	case yaml.SequenceNode:
		n.Style &^= yaml.FlowStyle
		for i, item := range n.Content {
			expandNode(item, path+"["+strconv.Itoa(i)+"]", lookup, problems)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			if m == "$$" {
				return "$"
			}
			name := m[2 : len(m)-1]
			if !validEnvName(name) {
				*problems = append(*problems, fmt.Errorf("%s: %q is not a valid environment reference; write ${NAME} with letters, digits and _, or $$ for a literal $", path, m))
				return m
			}
			v, ok := lookup(name)
			if !ok {
				*problems = append(*problems, fmt.Errorf("%s: environment variable %s is not set; export it or put the value in the file", path, name))
				return ""
			}
			return v
		})
		// An expanded value is a string, whatever it looks like.
		n.Tag = "!!str"
		n.Style = yaml.DoubleQuotedStyle
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// yamlError reports a file that is not YAML at all.
func yamlError(err error) error {
	return fmt.Errorf("not valid YAML: %w", err)
}

// nodeRef is a node of the re-marshaled document: its field path, and
// its line in the user's file.
type nodeRef struct {
	kind yaml.Kind
	key  bool
	path string
	line int
}

// indexLines maps each line of the re-marshaled document to the nodes
// that start on it, walking it alongside the user's tree (same shape).
func indexLines(exp, orig *yaml.Node, path string, idx map[int][]nodeRef) {
	idx[exp.Line] = append(idx[exp.Line], nodeRef{exp.Kind, false, path, orig.Line})
	switch exp.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(exp.Content) && i+1 < len(orig.Content); i += 2 {
			k := exp.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			idx[k.Line] = append(idx[k.Line], nodeRef{k.Kind, true, p, orig.Content[i].Line})
			indexLines(exp.Content[i+1], orig.Content[i+1], p, idx)
		}
	case yaml.SequenceNode:
		for i := 0; i < len(exp.Content) && i < len(orig.Content); i++ {
			indexLines(exp.Content[i], orig.Content[i], path+"["+strconv.Itoa(i)+"]", idx)
		}
	}
}

var yamlLine = regexp.MustCompile(`^line (\d+): (.*)$`)

// decodeError rewrites yaml.v3's decoding errors, whose line numbers are
// those of the re-marshaled document, to name the field and its line in
// the user's file, and to say what to do.
func decodeError(err error, expanded []byte, orig *yaml.Node) error {
	return decodeErrorAt(err, expanded, orig, "")
}

// decodeErrorAt is decodeError for a part of the document: expanded is
// the part re-marshaled on its own, orig its node in the user's tree and
// path its field path.
func decodeErrorAt(err error, expanded []byte, orig *yaml.Node, path string) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	idx := map[int][]nodeRef{}
	var exp yaml.Node
	if yaml.Unmarshal(expanded, &exp) == nil && len(exp.Content) > 0 {
		indexLines(exp.Content[0], orig, path, idx)
	}
	find := func(line int, kind yaml.Kind, key bool) (nodeRef, bool) {
		refs := idx[line]
		for i := len(refs) - 1; i >= 0; i-- { // innermost first
			if refs[i].kind == kind && refs[i].key == key {
				return refs[i], true
			}
		}
		return nodeRef{}, false
	}
	var out []error
	for _, e := range te.Errors {
		m := yamlLine.FindStringSubmatch(e)
		if m == nil {
			out = append(out, errors.New(e))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		kind, key := yaml.ScalarNode, false
		switch {
		case strings.HasPrefix(msg, "field "):
			key = true
			name, _, _ := strings.Cut(strings.TrimPrefix(msg, "field "), " not found in type ")
			msg = fmt.Sprintf("%q is not a known setting; check the spelling against the README", name)
		case strings.HasPrefix(msg, "mapping key "):
			key = true
			msg = "is set twice; keep one"
			if at := strings.LastIndex(m[2], " at line "); at >= 0 {
				first, _ := strconv.Atoi(m[2][at+len(" at line "):])
				if r, ok := find(first, yaml.ScalarNode, true); ok {
					msg = fmt.Sprintf("is set twice (first at line %d); keep one", r.line)
				}
			}
		case strings.HasPrefix(msg, "cannot unmarshal !!seq"):
			kind = yaml.SequenceNode
		case strings.HasPrefix(msg, "cannot unmarshal !!map"):
			kind = yaml.MappingNode
		}
		r, ok := find(line, kind, key)
		switch {
		case ok && r.path != "":
			out = append(out, fmt.Errorf("%s (line %d): %s", r.path, r.line, msg))
		case ok:
			out = append(out, fmt.Errorf("line %d: %s", r.line, msg))
		default:
			out = append(out, errors.New(msg))
		}
	}
	return errors.Join(out...)
}

// decodeBlocks decodes each bot's platform blocks, strictly, into their
// platforms' settings (provider.Platform), and reports a key that names
// no platform as an unknown setting, as the strict decoder reports the
// others. orig is the user's document. A bot whose platform has no block
// gets its platform's empty settings from applyDefaults; unknown
// providers are Validate's.
func (c *Config) decodeBlocks(orig *yaml.Node) []error {
	var errs []error
	for i := range c.Bots {
		b := &c.Bots[i]
		path := fmt.Sprintf("bots[%d]", i)
		bot := valueOf(child(valueOf(orig, "bots"), i), "")
		for _, key := range slices.Sorted(maps.Keys(b.Blocks)) {
			node := b.Blocks[key]
			p, ok := provider.Lookup(key)
			if !ok {
				line := node.Line
				if k := keyOf(bot, key); k != nil {
					line = k.Line
				}
				errs = append(errs, fmt.Errorf("%s.%s (line %d): %q is not a known setting; check the spelling against the README", path, key, line, key))
				continue
			}
			settings := p.Settings()
			if err := decodeStrict(&node, settings, valueOf(bot, key), path+"."+key); err != nil {
				errs = append(errs, err)
			}
			if key == b.Provider {
				b.Settings = settings
			}
		}
		b.Blocks = nil // decoded: the nodes are not needed any more
	}
	return errs
}

// decodeStrict decodes node into v, a misspelt key being an error, and
// reports errors at their lines in orig, the node's original.
func decodeStrict(node *yaml.Node, v any, orig *yaml.Node, path string) error {
	data, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		if orig == nil {
			orig = node
		}
		return decodeErrorAt(err, data, orig, path)
	}
	return nil
}

// keyOf returns the key node named key of mapping m, or nil.
func keyOf(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}

// valueOf returns the value node of key in mapping m ("" returns m), or
// nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	if key == "" {
		return m
	}
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// child returns item i of sequence s, or nil.
func child(s *yaml.Node, i int) *yaml.Node {
	if s == nil || s.Kind != yaml.SequenceNode || i >= len(s.Content) {
		return nil
	}
	return s.Content[i]
}
