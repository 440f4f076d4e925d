package chatlayertest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/porthole-chat/porthole/server/chatlayer/chatlayertest"
	"github.com/porthole-chat/porthole/server/provider/providertest"
)

// get fetches url with header and returns the status and the body.
func get(t *testing.T, url string, header http.Header) (int, string) {
	t.Helper()
	status, body, _ := do(t, http.MethodGet, url, header, "")
	return status, body
}

func keysOf(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestEmulatorHistory: the bot's messages are in both histories, in
// counter order, whether their callbacks arrived or not; the shapes are
// those of PROVIDERS.md and its sample; the legacy one pages; both check
// their credentials; an expired session's history is gone.
func TestEmulatorHistory(t *testing.T) {
	p := &proxy{}
	hook := httptest.NewServer(p)
	defer hook.Close()
	const expiry = 300 * time.Millisecond
	emu := chatlayertest.NewServer(chatlayertest.Options{Callback: hook.URL, RetryDelay: time.Millisecond, SessionExpiry: expiry})
	defer emu.Close()
	send := func(msg string) {
		t.Helper()
		url := emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
		if status, body, _ := call(t, url, jsonHeader(chatlayertest.DefaultToken), `{"user":{"id":"`+user+`"},"message":`+msg+`}`); status != 200 {
			t.Fatalf("send %s: %d %s", msg, status, body)
		}
		providertest.Idle(t, emu)
	}
	emu.DropCallbacks(2)
	send(`{"introMessage":{}}`)
	send(`{"textMessage":{"text":"event"}}`)
	send(`{"textMessage":{"text":"hello there"}}`)
	produced := emu.Produced(user)
	if len(p.messages()) != int(produced)-2 {
		t.Fatalf("%d callbacks arrived of %d produced, with 2 dropped", len(p.messages()), produced)
	}

	legacy := emu.URL + "/api/bots/" + chatlayertest.DefaultBotID + "/history/" + user + "?access_token=" + chatlayertest.DefaultToken
	status, body := get(t, legacy+"&limit=100", nil)
	if status != 200 {
		t.Fatalf("legacy history: %d %s", status, body)
	}
	var page struct {
		Rows  []map[string]json.RawMessage `json:"rows"`
		Count int                          `json:"count"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile("../testdata/fixtures/legacy-history-response.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct{ Rows []map[string]json.RawMessage }
	json.Unmarshal(sample, &want)
	var bots []json.RawMessage
	for _, row := range page.Rows {
		if !reflect.DeepEqual(keysOf(row), keysOf(want.Rows[0])) {
			t.Fatalf("row fields %v, the sample has %v", keysOf(row), keysOf(want.Rows[0]))
		}
		var actor, created string
		json.Unmarshal(row["actor"], &actor)
		json.Unmarshal(row["createdAt"], &created)
		if _, err := time.Parse(time.RFC3339Nano, created); err != nil {
			t.Fatalf("createdAt %q: %v", created, err)
		}
		if actor == "bot" {
			bots = append(bots, row["message"])
		}
	}
	if page.Count != len(page.Rows) || len(page.Rows) != int(produced)+3 {
		t.Fatalf("count %d, %d rows; want the 3 user messages and the %d bot messages", page.Count, len(page.Rows), produced)
	}
	if len(bots) != int(produced) || !reflect.DeepEqual(bots, emu.History(user)) {
		t.Fatalf("the history's bot rows are not the %d messages produced", produced)
	}
	var all []json.RawMessage
	for _, c := range emu.Callbacks() {
		var cb struct{ Message json.RawMessage }
		json.Unmarshal(c.Body, &cb)
		all = append(all, cb.Message)
	}
	for i := range bots {
		var a, b any
		json.Unmarshal(bots[i], &a)
		json.Unmarshal(all[i], &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("history bot row %d is not messageCounter %d's message", i, i+1)
		}
	}

	// Paging: offset and limit, count stays the total.
	status, body = get(t, legacy+"&offset=2&limit=3", nil)
	json.Unmarshal([]byte(body), &page)
	if status != 200 || len(page.Rows) != 3 || page.Count != int(produced)+3 {
		t.Fatalf("page offset 2 limit 3: %d, %d rows, count %d", status, len(page.Rows), page.Count)
	}
	for _, bad := range []struct {
		url  string
		want int
	}{
		{strings.Replace(legacy, chatlayertest.DefaultToken, "wrong", 1), 401},
		{strings.Split(legacy, "?")[0], 401},
		{strings.Replace(legacy, chatlayertest.DefaultBotID, "other", 1), 404},
		{legacy + "&offset=-1", 400},
		{legacy + "&limit=x", 400},
	} {
		if status, _ := get(t, bad.url, nil); status != bad.want {
			t.Errorf("GET %s: %d, want %d", bad.url, status, bad.want)
		}
	}

	v1 := emu.URL + "/v1/bots/" + chatlayertest.DefaultBotID + "/conversations/" + user + "/messages"
	status, body = get(t, v1+"?version=LIVE", jsonHeader(chatlayertest.DefaultToken))
	if status != 200 {
		t.Fatalf("v1 history: %d %s", status, body)
	}
	var data struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	json.Unmarshal([]byte(body), &data)
	var v1bots []json.RawMessage
	for _, e := range data.Data {
		if got := keysOf(e); !reflect.DeepEqual(got, []string{"actor", "message", "timestamp"}) {
			t.Fatalf("v1 entry fields %v", got)
		}
		if string(e["actor"]) == `"bot"` {
			v1bots = append(v1bots, e["message"])
		}
	}
	if !reflect.DeepEqual(v1bots, bots) {
		t.Fatal("the V1 history's bot messages differ from the legacy history's")
	}
	for _, bad := range []struct {
		url    string
		header http.Header
		want   int
	}{
		{v1 + "?version=LIVE", nil, 401},
		{v1 + "?version=LIVE", jsonHeader("wrong"), 401},
		{v1, jsonHeader(chatlayertest.DefaultToken), 400},
		{strings.Replace(v1, chatlayertest.DefaultBotID, "other", 1) + "?version=LIVE", jsonHeader(chatlayertest.DefaultToken), 404},
	} {
		if status, _ := get(t, bad.url, bad.header); status != bad.want {
			t.Errorf("GET %s: %d, want %d", bad.url, status, bad.want)
		}
	}

	// A new session has a history of its own.
	time.Sleep(expiry + 50*time.Millisecond)
	send(`{"textMessage":{"text":"back again"}}`)
	if h := emu.History(user); len(h) != 1 || !strings.Contains(string(h[0]), "back again") {
		t.Fatalf("history of the new session: %s", h)
	}
}

// TestEmulatorHistoryFollowsReplyDelay: a reply the bot is still
// thinking about is not in the history yet.
func TestEmulatorHistoryFollowsReplyDelay(t *testing.T) {
	emu := chatlayertest.NewServer(chatlayertest.Options{ReplyDelay: 300 * time.Millisecond, Callback: "http://127.0.0.1:1/none"})
	defer emu.Close()
	url := emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
	if status, _, _ := call(t, url, jsonHeader(chatlayertest.DefaultToken), `{"user":{"id":"`+user+`"},"message":{"textMessage":{"text":"hi"}}}`); status != 200 {
		t.Fatal("send refused")
	}
	if h := emu.History(user); len(h) != 0 {
		t.Fatalf("%d replies in the history before the bot sent them", len(h))
	}
	time.Sleep(400 * time.Millisecond)
	if h := emu.History(user); len(h) == 0 {
		t.Fatal("no reply in the history after the bot sent it")
	}
}

// TestEmulatorWebview: POST /api/webview saves session data, triggers a
// dialog state and sends bot messages as callbacks, and refuses what
// PROVIDERS.md does not allow.
func TestEmulatorWebview(t *testing.T) {
	p := &proxy{}
	hook := httptest.NewServer(p)
	defer hook.Close()
	emu := chatlayertest.NewServer(chatlayertest.Options{Callback: hook.URL})
	defer emu.Close()
	url := emu.URL + "/api/webview?access_token=" + chatlayertest.DefaultToken
	h := http.Header{"Content-Type": {"application/json"}}
	for _, bad := range []struct {
		url, body string
		want      int
	}{
		{emu.URL + "/api/webview", `{"botId":"emu-bot","senderId":"` + user + `","action":{"nextDialogstate":"1"}}`, 401},
		{url, `{"botId":"other","senderId":"` + user + `","action":{"nextDialogstate":"1"}}`, 400},
		{url, `{"botId":"emu-bot","action":{"nextDialogstate":"1"}}`, 400},
		{url, `{"botId":"emu-bot","senderId":"` + user + `","session":{"namespace":"x","data":{"a":1}}}`, 400},
		{url, `{"botId":"emu-bot","senderId":"` + user + `","session":{"data":[]},"action":{"nextDialogstate":"1"}}`, 400},
		{url, `{"botId":"emu-bot","senderId":"` + user + `","action":{}}`, 400},
		{url, `[]`, 400},
	} {
		if status, body, _ := call(t, bad.url, h, bad.body); status != bad.want {
			t.Errorf("POST %s: %d %s, want %d", bad.body, status, body, bad.want)
		}
	}
	if len(emu.SessionData(user)) != 0 || emu.Sessions(user) != 0 {
		t.Fatal("a refused webview call changed the session")
	}

	sample, err := os.ReadFile("../testdata/fixtures/legacy-webview-request.json")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.NewReplacer(`"1234"`, `"emu-bot"`, "the senderId of the conversation to act on", user).Replace(string(sample))
	status, answer, _ := call(t, url, h, body)
	if status != 200 || answer != "" {
		t.Fatalf("the documented sample: %d %q, want 200 with an empty body", status, answer)
	}
	providertest.Idle(t, emu)
	if string(emu.SessionData(user)["example"]) != "true" || !reflect.DeepEqual(emu.Dialogstates(user), []string{"12345"}) {
		t.Fatalf("session %v, dialog states %v", emu.SessionData(user), emu.Dialogstates(user))
	}
	msgs := p.messages()
	if len(msgs) != 1 || !strings.Contains(string(msgs[0]["message"]), "This is a sample text message.") || string(msgs[0]["messageCounter"]) != "1" {
		t.Fatalf("callbacks after the webview call: %v", msgs)
	}

	// Session data saved without a message is what the bot answers with.
	status, _, _ = call(t, url, h, `{"botId":"emu-bot","senderId":"`+user+`","session":{"namespace":"porthole","data":{"plan":"gold"}},"action":{"nextDialogstate":"sync"}}`)
	if status != 200 {
		t.Fatalf("session update: %d", status)
	}
	send := emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
	if status, _, _ := call(t, send, jsonHeader(chatlayertest.DefaultToken), `{"user":{"id":"`+user+`"},"message":{"textMessage":{"text":"hi"}}}`); status != 200 {
		t.Fatal("send refused")
	}
	providertest.Idle(t, emu)
	if last := p.messages(); !strings.Contains(string(last[len(last)-1]["message"]), "Your plan is gold.") {
		t.Fatalf("the bot's answer after the session update: %s", last[len(last)-1]["message"])
	}
}

// TestEmulatorDropNumberedAndOnAccept: DropNumbered drops the message of
// that number in the next conversations that reach it, and OnAccept
// sees each accepted message before the answer.
func TestEmulatorDropNumberedAndOnAccept(t *testing.T) {
	p := &proxy{}
	hook := httptest.NewServer(p)
	defer hook.Close()
	var seen []string
	emu := chatlayertest.NewServer(chatlayertest.Options{Callback: hook.URL, OnAccept: func(q chatlayertest.Request) {
		seen = append(seen, q.Kind+":"+q.UserID)
	}})
	defer emu.Close()
	emu.DropNumbered(3, 1)
	url := emu.URL + "/v1/channels/webhook/" + chatlayertest.DefaultChannelID + "/messages"
	for _, msg := range []string{`{"introMessage":{}}`, `{"textMessage":{"text":"media"}}`} {
		if status, _, _ := call(t, url, jsonHeader(chatlayertest.DefaultToken), `{"user":{"id":"`+user+`"},"message":`+msg+`}`); status != 200 {
			t.Fatal("send refused")
		}
	}
	providertest.Idle(t, emu)
	var counters []string
	for _, cb := range p.messages() {
		counters = append(counters, string(cb["messageCounter"]))
	}
	if strings.Contains(","+strings.Join(counters, ",")+",", ",3,") || len(counters) != int(emu.Produced(user))-1 {
		t.Fatalf("counters %v: want all but 3", counters)
	}
	if strings.Join(seen, " ") != "intro:"+user+" text:"+user {
		t.Fatalf("OnAccept saw %v", seen)
	}
}
