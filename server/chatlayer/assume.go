package chatlayer

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/porthole-chat/porthole/server/provider"
)

// This file keeps, in one place, every behaviour the Chatlayer
// documentation leaves open (PROVIDERS.md marks them "assumed"). Change
// them here and nowhere else.
//
//  1. Any 2xx answer means Chatlayer accepted a message and its body is
//     ignored: the V1 response is undocumented, the legacy one is the
//     plain text EVENT_RECEIVED (see Send; provider.Upstream returns a
//     response for a 2xx only).
//  2. A postback payload is either the JSON "button/quickreply" kind or
//     an opaque id; opaque ids go out as postbackMessage.payload in mode
//     v1 (see classifyPayload and v1Postback).
//  3. The id a callback routes on (senderId, recipient.id or sender.id)
//     is the user id we sent, that is our conversation id, possibly
//     behind a prefix such as "default-" (see conversationOf).
//  4. messageCounter counts a conversation's bot messages (events
//     included) from 1, one by one, so a gap means a callback still on
//     its way (see firstCounter).
//  5. Mode legacy has no intro message: a conversation start sends
//     nothing, and the bot speaks once the visitor does (see Send).
//  6. Mode legacy's message endpoint has no session data:
//     Porthole.setSessionData reaches Chatlayer in that mode only through
//     the asynchronous endpoint, with session_dialogstate (see Send and
//     pushSession).
//  7. A signed-in user (Porthole.login) goes upstream as user.firstName
//     and user.lastName (the name split at its first space) and as the
//     session data keys externalId, email and phone. Those and the other
//     identity keys (provider.ReservedKeys) come from the login only: they
//     are dropped from the page's session data and from a click's
//     sessionDataToSet. See contactSessionData and v1Postback.
//  8. When Chatlayer's session of a conversation expires (30 days by
//     default), the next visitor message starts a new session whose
//     messageCounter starts again at 1, while our conversation goes on.
//     A callback carries no session id, timestamp or message id, so the
//     counter and the time are all there is to see it by; and a
//     callback Chatlayer retries (3 times, timing undocumented) or that
//     is merely late reaches us within Config.RetryWindow (10 minutes by
//     default) of the callbacks numbered after it, while a session
//     expires only after far longer. See restarted.
//  9. The history (GET /api/bots/{botId}/history/{senderId} in mode
//     legacy, GET /v1/bots/{botId}/conversations/{sessionId}/messages in
//     mode v1, whose sessionId is the user id we send) lists the
//     messages of the conversation's current Chatlayer session, oldest
//     first (the sample's order; one listed newest first is turned
//     round, and times, RFC 3339, order it when all are known). Its
//     messages with actor "bot", events included, are the session's bot
//     messages in messageCounter order: the k-th is the callback
//     numbered k. Callbacks carry no message id and V1's history none
//     either, so the counter within its epoch is the only key the two
//     share, and a recovered message is stored under the key its
//     callback has. See reconcile.
// 10. A history message is written when the bot sends it, so the one
//     numbered like our last counter was written before its callback
//     reached us; one written more than RetryWindow after we stored
//     that counter belongs to a new session (see reconcile).
// 11. The legacy /api endpoints (history, webview) take the API token
//     (the V1 token) as access_token; mode legacy needs token set for
//     them. See history and pushSession.
// 12. Chatlayer writes an accepted introMessage into the history at once
//     (a row with isIntro), so a conversation whose history is empty
//     never had its start accepted. See startedBefore.
// 13. POST /api/webview saves session.data at the top of the session's
//     data, where V1's sessionData keys go, when session.namespace is
//     left out (the sample's "options" namespace would put it under a
//     key of that name); and a dialog state made to take the data and
//     say nothing (session_dialogstate) is a valid action that shows the
//     visitor nothing. See pushSession.
// 14. Page context (Porthole.setContext, and page.url and page.title
//     when a single-page site moves on) is session data under keys
//     starting "page.", and Chatlayer reads a dotted key as a nested
//     object, so a bot finds it as {page.url}, {page.title} and
//     {page.plan}. It travels like setSessionData's keys: with the next
//     message, or at once with session_dialogstate. Identity keys stay
//     out here too: "page.email" is refused (provider.IsReserved reads
//     the last part of a dotted key).

// firstCounter is the messageCounter expected first in a conversation
// for which no counter was stored yet (assumption 4). A conversation
// whose counters start higher pays one reorder wait, once.
const firstCounter = 1

// restarted reports whether a callback numbered counter, arriving at
// now while the conversation's stored state is s, belongs to a new
// Chatlayer session (assumption 8), so that a new counter epoch begins
// with it. It does when the counter is at or below the highest one
// delivered in the current epoch, and that counter last moved more than
// window ago.
//
// Why this rule: a copy of an old callback (a retry, a late one, or a
// duplicate) numbered at or below s.Last was sent before the callback
// numbered s.Last was delivered, and arrives within window of its first
// sending, so it comes within window of s.At; past that, a counter at or
// below s.Last can only be a counter that started again. Neither the
// counter alone (a retry of counter 1 can come after counter 5 was
// stored) nor the body (a new session's greeting repeats the old one
// word for word) tells the two apart.
//
// What it cannot see: a new session whose first callbacks come within
// window of the old session's last (Chatlayer's expiry would have to be
// shorter than window); its callbacks at or below s.Last are taken for
// copies and dropped, those above it are shown. And a callback of the
// new session numbered above s.Last that arrives before the new
// session's lower ones is shown in the old epoch, and the lower ones
// then within window are taken for copies; with sessions of more than a
// couple of bot messages that needs a reordering of many callbacks at
// once. When the time of s is unknown (a value stored before epochs),
// it counts as long ago: a returning visitor gets the new replies, and
// only a retry in the minutes of the upgrade could show twice.
func restarted(s Counter, counter uint64, now time.Time, window time.Duration) bool {
	return s.Last >= firstCounter && counter <= s.Last && (s.At.IsZero() || now.Sub(s.At) > window)
}

// clickPayload is the JSON kind of postback payload Chatlayer puts on
// buttons and quick replies, in both generations: "parameters" (current)
// and "params" (the legacy webhook's button click).
type clickPayload struct {
	Title             string          `json:"title"`
	Caption           string          `json:"caption"`
	OriginalTitle     string          `json:"originalTitle"`
	Type              string          `json:"type"`
	NextDialogstateID json.RawMessage `json:"nextDialogstateId"`
	Parameters        []clickParam    `json:"parameters"`
	Params            []clickParam    `json:"params"`
}

// clickParam is one session variable a click sets.
type clickParam struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// classifyPayload returns the parsed payload when it is the JSON
// button/quickreply kind, or nil for an opaque id (assumption 2). The
// JSON kind is an object naming a next dialog state or parameters to
// set; anything else, JSON or not, is opaque and never interpreted.
func classifyPayload(payload string) *clickPayload {
	s := strings.TrimSpace(payload)
	if !strings.HasPrefix(s, "{") {
		return nil
	}
	var raw map[string]json.RawMessage
	if json.Unmarshal([]byte(s), &raw) != nil {
		return nil
	}
	_, next := raw["nextDialogstateId"]
	_, params := raw["parameters"]
	_, legacy := raw["params"]
	if !next && !params && !legacy {
		return nil
	}
	var p clickPayload
	if json.Unmarshal([]byte(s), &p) != nil {
		return nil // a field of an unexpected type: treat it as opaque
	}
	return &p
}

// v1Postback builds the postbackMessage for a click on a button titled
// title with the payload the bot gave it. The JSON kind becomes
// nextDialogstateId and sessionDataToSet, as Chatlayer's own channels
// send it; an opaque id goes back untouched as payload (assumption 2).
func v1Postback(title, payload string) *postbackMessage {
	p := classifyPayload(payload)
	if p == nil {
		if strings.TrimSpace(title) == "" {
			title = payload
		}
		return &postbackMessage{Title: title, Payload: payload}
	}
	if strings.TrimSpace(title) == "" {
		title = firstNonEmpty(p.Caption, p.Title, p.OriginalTitle)
	}
	m := &postbackMessage{Title: title, NextDialogstateID: dialogStateID(p.NextDialogstateID)}
	for _, ps := range [][]clickParam{p.Parameters, p.Params} {
		for _, kv := range ps {
			if kv.Key == "" || provider.IsReserved(kv.Key) {
				continue // an identity comes from a verified login only (assumption 7)
			}
			v := kv.Value
			if len(v) == 0 {
				v = json.RawMessage("null")
			}
			m.SessionDataToSet = append(m.SessionDataToSet, sessionKV{Key: kv.Key, Value: v})
		}
	}
	return m
}

// dialogStateID reads nextDialogstateId, a string in every sample but
// taken as a number too.
func dialogStateID(raw json.RawMessage) string { return scalar(raw) }

// conversationOf returns our conversation id from the id a callback
// routes on (assumption 3). We send our conversation id, 32 lowercase
// hex characters, as the Chatlayer user (or legacy sender) id, so a
// callback names it back; a prefix Chatlayer may add, ending in "-", ":"
// or "_" (the documentation shows "default-<id>"), is ignored.
func conversationOf(id string) (string, bool) {
	if isConversationID(id) {
		return id, true
	}
	if len(id) > 32 {
		tail := id[len(id)-32:]
		switch id[len(id)-33] {
		case '-', ':', '_':
			if isConversationID(tail) {
				return tail, true
			}
		}
	}
	return "", false
}

// isConversationID reports whether s has the shape of our conversation
// ids: 32 lowercase hex characters.
func isConversationID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// splitName splits a display name into first and last name at its first
// space (assumption 7).
func splitName(name string) (first, last string) {
	name = strings.TrimSpace(name)
	first, last, _ = strings.Cut(name, " ")
	return first, strings.TrimSpace(last)
}

// contactSessionData drops every identity key from V1 session data
// (the service refuses them, but data stored before it did may hold
// some) and adds the signed-in user's id, e-mail and phone: an identity
// comes from a verified login only (assumption 7).
func contactSessionData(obj map[string]json.RawMessage, c *provider.Contact) {
	provider.StripReserved(obj)
	if c == nil {
		return
	}
	for k, v := range map[string]string{"externalId": c.User, "email": c.Email, "phone": c.Phone} {
		if v != "" {
			obj[k], _ = json.Marshal(v)
		}
	}
}
