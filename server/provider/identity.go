package provider

import (
	"encoding/json"
	"slices"
	"strings"
)

// ReservedKeys are the session data keys a bot platform treats as the
// visitor's identity: Chatlayer's session data externalId, email and
// phone and its user fields firstName and lastName, ChatAIBot's
// variables.contact name, email and phone. They are written only from a
// verified login (Porthole.login), never from what a page or a click
// sets, so that a page cannot claim a user its site did not sign. The
// README lists them under "Signed-in visitors"; keep the two in step.
var ReservedKeys = []string{"externalId", "userId", "email", "phone", "name", "firstName", "lastName", "user", "contact"}

// reserved holds ReservedKeys folded by foldKey.
var reserved = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range ReservedKeys {
		m[foldKey(k)] = true
	}
	return m
}()

// foldKey folds a key for the reserved check: case, "_", "-" and spaces
// do not matter, so "External_ID" or "first-name" are no way around it.
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', ' ':
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(k)))
}

// IsReserved reports whether key names an identity (ReservedKeys), in
// any case and spelling of separators, alone or as the last part of a
// dotted key ("user.email"), or as the first part of one ("user.id",
// "contact.phone"), since Chatlayer reads dotted keys as nested objects.
func IsReserved(key string) bool {
	if reserved[foldKey(key)] {
		return true
	}
	if first, _, dotted := strings.Cut(key, "."); dotted {
		last := key[strings.LastIndexByte(key, '.')+1:]
		return reserved[foldKey(last)] || foldKey(first) == "user" || foldKey(first) == "contact"
	}
	return false
}

// StripReserved removes the reserved keys from obj and returns the keys
// it removed, sorted, so that an error can name them.
func StripReserved(obj map[string]json.RawMessage) []string {
	var out []string
	for k := range obj {
		if IsReserved(k) {
			out = append(out, k)
			delete(obj, k)
		}
	}
	slices.Sort(out)
	return out
}
