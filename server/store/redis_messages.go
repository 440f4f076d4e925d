package store

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
)

// msgTail encodes the fields of m that the scripts never change, after
// version, At and state: reason, id, client id, from, payload, body.
func msgTail(m Message) string {
	b := make([]byte, 0, 64+len(m.ID)+len(m.ClientID)+len(m.Payload)+len(m.Body)+len(m.Reason))
	for _, f := range []string{m.Reason, m.ID, m.ClientID, string(m.From), m.Payload} {
		b = appendNetstring(b, f)
	}
	return string(appendNetstring(b, m.Body))
}

func appendNetstring[S ~string | ~[]byte](b []byte, s S) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	return append(append(b, ':'), s...)
}

// decodeMsg reads a message record (see redis_scripts.go).
func decodeMsg(conversation string, seq uint64, rec string) (Message, error) {
	var f [9]string
	rest := rec
	for i := range f {
		n, after, ok := cutNetstring(rest)
		if !ok {
			return Message{}, fmt.Errorf("message %d of conversation %s: corrupt record in redis", seq, conversation)
		}
		f[i], rest = n, after
	}
	at, err := strconv.ParseInt(f[1], 10, 64)
	if f[0] != "1" || err != nil || rest != "" {
		return Message{}, fmt.Errorf("message %d of conversation %s: corrupt record in redis (version %q)", seq, conversation, f[0])
	}
	m := Message{
		Conversation: conversation,
		Seq:          seq,
		At:           fromMS(at),
		State:        intern([]byte(f[2]), Pending, Delivered, Failed),
		Reason:       f[3],
		ID:           f[4],
		ClientID:     f[5],
		From:         intern([]byte(f[6]), FromUser, FromBot),
		Payload:      f[7],
	}
	if f[8] != "" {
		m.Body = []byte(f[8])
	}
	return m, nil
}

// cutNetstring splits "<n>:<n bytes>rest".
func cutNetstring(s string) (field, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || i >= len(s) || s[i] != ':' || n > len(s)-i-1 {
		return "", "", false
	}
	return s[i+1 : i+1+n], s[i+1+n:], true
}

// Append implements Store. A Pending message is announced to the outbox
// index before the script and the index set from the script's answer
// after it (see scriptPin and scriptIndex), so that a crash in between
// leaves an extra index entry rather than a pending message no index
// finds.
func (s *Redis) Append(ctx context.Context, m Message) (Message, bool, error) {
	if err := s.enter(); err != nil {
		return Message{}, false, err
	}
	defer s.mu.RUnlock()
	out, dup, err := s.appendMsg(ctx, m)
	return out, dup, fail("append to conversation "+m.Conversation, err)
}

func (s *Redis) appendMsg(ctx context.Context, m Message) (Message, bool, error) {
	if !validID(m.Conversation) {
		return Message{}, false, errNoConversation(m.Conversation)
	}
	if m.ID == "" {
		m.ID = newMessageID()
	}
	t := now()
	given := ""
	if !m.At.IsZero() {
		m.At = m.At.UTC().Truncate(precision)
		given = strconv.FormatInt(ms(m.At), 10)
	}
	token := ""
	if m.State == Pending {
		lower := t
		if given != "" {
			lower = m.At
		}
		token = newToken()
		if err := s.pin(ctx, m.Conversation, token, ms(lower)); err != nil {
			return Message{}, false, err
		}
	}
	k := s.keys(m.Conversation)
	res, err := s.runReplicated(ctx, k.conv, scriptAppend, []string{k.conv, k.msg, k.client, k.pending},
		m.ClientID, given, ms(t), string(m.State), msgTail(m))
	if err != nil {
		return Message{}, false, err // the pin runs out; the entry stays a hint
	}
	status := str(res, 0)
	if token != "" {
		if status == "nf" {
			s.index(ctx, m.Conversation, token, "gone", "")
		} else {
			s.index(ctx, m.Conversation, token, str(res, 3), str(res, 4))
		}
	}
	switch status {
	case "nf":
		return Message{}, false, errNoConversation(m.Conversation)
	case "dup":
		seq, err := strconv.ParseUint(str(res, 1), 10, 64)
		if err != nil {
			return Message{}, false, fmt.Errorf("message of client id %q: corrupt seq %q in redis", m.ClientID, str(res, 1))
		}
		stored, err := decodeMsg(m.Conversation, seq, str(res, 2))
		return stored, true, err
	}
	seq, err1 := num(res, 1)
	at, err2 := num(res, 2)
	if err1 != nil || err2 != nil {
		return Message{}, false, fmt.Errorf("unexpected answer to append: %v", res)
	}
	m.Seq, m.At = uint64(seq), fromMS(at)
	m.Body = bytes.Clone(m.Body)
	return m, false, nil
}

// Read implements Store.
func (s *Redis) Read(ctx context.Context, conversation string, after uint64, limit int) ([]Message, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if !validID(conversation) {
		return nil, errNoConversation(conversation)
	}
	k := s.keys(conversation)
	res, err := s.run(ctx, scriptRead, []string{k.conv, k.msg}, strconv.FormatUint(after, 10), limit)
	if err != nil {
		return nil, fail("read conversation "+conversation, err)
	}
	if str(res, 0) == "nf" {
		return nil, errNoConversation(conversation)
	}
	if len(res) == 1 {
		return nil, nil
	}
	out := make([]Message, 0, len(res)-1)
	for i, rec := range res[1:] {
		seq := after + uint64(i) + 1
		if rec == nil {
			return nil, fmt.Errorf("message %d of conversation %s: missing in redis", seq, conversation)
		}
		m, err := decodeMsg(conversation, seq, str(res, i+1))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// SetState implements Store. Setting Pending announces the message to the
// outbox index first, as Append does; any change of the pending set is
// written to the index after the script.
func (s *Redis) SetState(ctx context.Context, conversation string, seq uint64, state State, reason string) (Message, error) {
	if err := checkState(conversation, seq, state); err != nil {
		return Message{}, err
	}
	if err := s.enter(); err != nil {
		return Message{}, err
	}
	defer s.mu.RUnlock()
	if !validID(conversation) {
		return Message{}, errNoConversation(conversation)
	}
	token := ""
	if state == Pending {
		// The message's At is not known here; 0 is a lower bound of any.
		token = newToken()
		if err := s.pin(ctx, conversation, token, 0); err != nil {
			return Message{}, fail("set state in conversation "+conversation, err)
		}
	}
	k := s.keys(conversation)
	res, err := s.run(ctx, scriptSetState, []string{k.conv, k.msg, k.pending}, seq, string(state), reason)
	if err != nil {
		return Message{}, fail("set state in conversation "+conversation, err)
	}
	switch status := str(res, 0); {
	case status == "nf" && token != "":
		s.index(ctx, conversation, token, "gone", "")
	case status == "ok" && (token != "" || str(res, 4) == "1"):
		s.index(ctx, conversation, token, str(res, 2), str(res, 3))
	case status == "nm" && token != "":
		s.index(ctx, conversation, token, str(res, 1), str(res, 2))
	}
	switch str(res, 0) {
	case "nf":
		return Message{}, errNoConversation(conversation)
	case "nm":
		return Message{}, errNoMessage(conversation, seq)
	}
	return decodeMsg(conversation, seq, str(res, 1))
}

// Load implements Store: one script reads it all.
func (s *Redis) Load(ctx context.Context, conversation string, seq uint64, keys ...string) (Loaded, error) {
	if err := s.enter(); err != nil {
		return Loaded{}, err
	}
	defer s.mu.RUnlock()
	if !validID(conversation) {
		return Loaded{}, errNoConversation(conversation)
	}
	k := s.keys(conversation)
	args := make([]any, 0, 1+len(keys))
	args = append(args, strconv.FormatUint(seq, 10))
	for _, key := range keys {
		args = append(args, key)
	}
	res, err := s.run(ctx, scriptLoad, []string{k.conv, k.msg, k.attr}, args...)
	if err != nil {
		return Loaded{}, fail("load conversation "+conversation, err)
	}
	if str(res, 0) == "nf" {
		return Loaded{}, errNoConversation(conversation)
	}
	l := Loaded{Attrs: map[string]string{}}
	if l.Conversation, err = parseConv(conversation, res[1:6]); err != nil {
		return Loaded{}, err
	}
	if !isNil(res, 6) {
		if l.Message, err = decodeMsg(conversation, seq, str(res, 6)); err != nil {
			return Loaded{}, err
		}
		l.HasMessage = true
	}
	for i, key := range keys {
		if !isNil(res, 7+i) {
			l.Attrs[key] = str(res, 7+i)
		}
	}
	return l, nil
}

// Attr implements Store.
func (s *Redis) Attr(ctx context.Context, conversation, key string) (string, error) {
	if err := s.enter(); err != nil {
		return "", err
	}
	defer s.mu.RUnlock()
	if !validID(conversation) {
		return "", errNoConversation(conversation)
	}
	k := s.keys(conversation)
	res, err := s.run(ctx, scriptGetAttr, []string{k.conv, k.attr}, key)
	if err != nil {
		return "", fail("attribute of conversation "+conversation, err)
	}
	if str(res, 0) == "nf" {
		return "", errNoConversation(conversation)
	}
	return str(res, 1), nil
}

// SetAttr implements Store.
func (s *Redis) SetAttr(ctx context.Context, conversation, key, value string) error {
	_, err := s.setAttr(ctx, conversation, key, "", value, false)
	return err
}

// CompareAndSetAttr implements Store.
func (s *Redis) CompareAndSetAttr(ctx context.Context, conversation, key, old, value string) (bool, error) {
	return s.setAttr(ctx, conversation, key, old, value, true)
}

func (s *Redis) setAttr(ctx context.Context, conversation, key, old, value string, compare bool) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	if !validID(conversation) {
		return false, errNoConversation(conversation)
	}
	flag := "0"
	if compare {
		flag = "1"
	}
	k := s.keys(conversation)
	res, err := s.run(ctx, scriptSetAttr, []string{k.conv, k.attr}, key, old, value, flag)
	if err != nil {
		return false, fail("set attribute of conversation "+conversation, err)
	}
	switch str(res, 0) {
	case "-1":
		return false, errNoConversation(conversation)
	case "1":
		return true, nil
	}
	return false, nil
}
