package widget

import (
	"strconv"
)

// Validation of frames: Decode checks every frame it reads, and the
// Client every frame it queues.

// Validate checks a hello frame.
func (f *Hello) Validate() error {
	if err := CheckBotID("bot", f.Bot); err != nil {
		return err
	}
	if len(f.Visitor) > 1024 {
		return invalid("visitor", "is longer than 1024 bytes")
	}
	if len(f.Locale) > 35 || len(f.TZ) > 64 {
		return invalid("locale", "or tz is too long")
	}
	if len(f.Page.URL) > MaxURL || len(f.Page.Referrer) > MaxURL {
		return invalid("page.url", "or page.referrer is longer than "+strconv.Itoa(MaxURL)+" bytes")
	}
	if err := checkText("page.title", f.Page.Title, MaxTitle); err != nil {
		return err
	}
	if len(f.Caps) > 16 {
		return invalid("caps", "has more than 16 entries")
	}
	if f.Login != nil {
		if f.Login.User == "" {
			return invalid("login.user", "is empty; leave login out for a visitor who is not signed in")
		}
		l := *f.Login
		l.ID = "hello"
		if err := l.Validate(); err != nil {
			if we, ok := err.(*Error); ok {
				we.Field = "login." + we.Field
			}
			return err
		}
	}
	return nil
}

// Validate checks a send frame.
func (f *Send) Validate() error {
	if err := CheckClientID("id", f.ID); err != nil {
		return err
	}
	if TrimSpace(f.Text) == "" {
		return invalid("text", "is empty")
	}
	return checkText("text", f.Text, MaxText)
}

// Validate checks a postback frame.
func (f *Postback) Validate() error {
	if err := CheckClientID("id", f.ID); err != nil {
		return err
	}
	if err := checkTitle("title", f.Title); err != nil {
		return err
	}
	return checkPayload("payload", f.Payload)
}

// Validate checks a session frame.
func (f *Session) Validate() error {
	if err := CheckClientID("id", f.ID); err != nil {
		return err
	}
	if len(f.Data) == 0 {
		return invalid("data", "must be an object")
	}
	if len(f.Data) > MaxSessionData {
		return invalid("data", "is larger than "+strconv.Itoa(MaxSessionData)+" bytes")
	}
	return nil
}

// Validate checks a login frame: a signature of 64 hex digits for a
// user, none for a logout.
func (f *Login) Validate() error {
	if err := CheckClientID("id", f.ID); err != nil {
		return err
	}
	if len(f.User) > MaxTitle {
		return invalid("user", "is longer than "+strconv.Itoa(MaxTitle)+" bytes")
	}
	if f.User == "" {
		if f.Signature != "" {
			return invalid("signature", "must be empty for a logout")
		}
		return nil
	}
	if len(f.Signature) != 64 || !hexDigits64(f.Signature) {
		return invalid("signature", "must be the 64 hex digits of HMAC-SHA256(identity_secret, user)")
	}
	if err := checkText("name", f.Name, MaxTitle); err != nil {
		return err
	}
	if len(f.Email) > MaxTitle || f.Email != "" && IndexByte(f.Email, '@') < 1 {
		return invalid("email", "must be an e-mail address")
	}
	if f.Phone != "" && !validPhone(f.Phone) {
		return invalid("phone", "must be a phone number such as +32 477 99 00 22")
	}
	return nil
}

func hexDigits64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Validate checks a start frame.
func (f *Start) Validate() error { return CheckClientID("id", f.ID) }

// Validate accepts every read frame.
func (f *Read) Validate() error { return nil }

// Validate accepts every welcome frame: an empty conversation means the
// visitor has none yet.
func (f *Welcome) Validate() error { return nil }

// Validate checks a msg frame, body included.
func (f *Msg) Validate() error {
	if f.Seq == 0 {
		return invalid("seq", "must be at least 1")
	}
	switch f.From {
	case "user", "bot", "system":
	default:
		return invalid("from", "must be user, bot or system")
	}
	return f.Body.Validate()
}

// Validate checks an ack frame.
func (f *Ack) Validate() error { return CheckClientID("id", f.ID) }

// Validate checks a status frame.
func (f *Status) Validate() error {
	if f.State != StateDelivered && f.State != StateFailed {
		return invalid("state", "must be delivered or failed")
	}
	return CheckClientID("id", f.ID)
}

// Validate accepts every typing frame.
func (f *Typing) Validate() error { return nil }

// Validate checks an error frame.
func (f *ErrorFrame) Validate() error {
	if f.Code == "" {
		return invalid("code", "is missing")
	}
	return nil
}

// CheckClientID accepts 1 to MaxID characters of letters, digits and
// "-_.:", which covers UUIDs and the widget's own ids.
func CheckClientID(field, id string) error {
	if id == "" {
		return invalid(field, "is missing")
	}
	if len(id) > MaxID {
		return invalid(field, "is longer than "+strconv.Itoa(MaxID)+" characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return invalid(field, "may only hold letters, digits and - _ . :")
		}
	}
	return nil
}

// CheckBotID accepts a bot id: 1 to 64 lowercase letters, digits, - and _,
// starting with a letter or digit, so that it is safe in URLs and paths.
func CheckBotID(field, id string) error {
	if id == "" {
		return invalid(field, "is missing")
	}
	if len(id) > 64 {
		return invalid(field, "is longer than 64 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (i > 0 && (c == '-' || c == '_'))
		if !ok {
			return invalid(field, "must be lowercase letters, digits, - and _, starting with a letter or digit")
		}
	}
	return nil
}
