package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The buckets of a Bolt file. A conversation id is stored as its 16 raw
// bytes (id16), seqs and times as 8 big-endian bytes so that keys sort by
// them, and a pair of strings as uvarint(len(a)) a b (pair).
var (
	bucketConv    = []byte("conv")    // id16 -> conversation record
	bucketVisitor = []byte("visitor") // pair(bot, visitor) -> id16
	bucketMsg     = []byte("msg")     // id16 seq -> message record
	bucketClient  = []byte("client")  // id16 ClientID -> seq
	bucketOutbox  = []byte("outbox")  // unix-ms(At) id16 seq -> empty
	bucketAttr    = []byte("attr")    // id16 key -> value
	bucketLink    = []byte("link")    // pair(bot, ref) -> id16
	bucketLinkBy  = []byte("linkby")  // id16 pair(bot, ref) -> empty, for Prune
	bucketClaim   = []byte("claim")   // id16 -> claim record (owner, until)
)

// recordVersion leads every record so that a later format can be told apart.
const recordVersion = 1

// parseID returns the 16 bytes of a conversation id, or false when id is
// not 32 lowercase hex characters (and so names no conversation).
func parseID(id string) ([]byte, bool) {
	if len(id) != 32 {
		return nil, false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, false
		}
	}
	raw, err := hex.DecodeString(id)
	return raw, err == nil
}

// be appends v as 8 big-endian bytes to a copy of prefix.
func be(prefix []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(prefix)+8), prefix...), v)
}

// under returns the key s of conversation id in a bucket keyed id16 s.
func under[S string | []byte](id []byte, s S) []byte {
	return append(id[:len(id):len(id)], s...)
}

// pair appends the unambiguous encoding of (a, b) to dst.
func pair(dst []byte, a, b string) []byte {
	return append(appendBytes(dst, a), b...)
}

// appendBytes appends s with its uvarint length.
func appendBytes[S ~string | ~[]byte](dst []byte, s S) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func getConv(tx *bolt.Tx, id []byte) (Conversation, error) {
	v := tx.Bucket(bucketConv).Get(id)
	if v == nil {
		return Conversation{}, errNoConversation(hex.EncodeToString(id))
	}
	return decodeConv(id, v)
}

func putConv(tx *bolt.Tx, id []byte, c Conversation) error {
	v := []byte{recordVersion}
	v = appendBytes(v, c.Bot)
	v = appendBytes(v, c.Visitor)
	v = binary.AppendVarint(v, c.Created.UnixMilli())
	v = binary.AppendVarint(v, c.Updated.UnixMilli())
	v = binary.AppendUvarint(v, c.Last)
	return tx.Bucket(bucketConv).Put(id, v)
}

func decodeConv(id, v []byte) (Conversation, error) {
	r := reader{b: v}
	r.version()
	c := Conversation{
		ID:      hex.EncodeToString(id),
		Bot:     string(r.bytes()),
		Visitor: string(r.bytes()),
		Created: r.time(),
		Updated: r.time(),
		Last:    r.uvarint(),
	}
	if r.bad {
		return Conversation{}, fmt.Errorf("conversation %s: corrupt record", c.ID)
	}
	return c, nil
}

func getMessage(tx *bolt.Tx, id []byte, conversation string, seq uint64) (Message, error) {
	v := tx.Bucket(bucketMsg).Get(be(id, seq))
	if v == nil {
		if tx.Bucket(bucketConv).Get(id) == nil {
			return Message{}, errNoConversation(conversation)
		}
		return Message{}, errNoMessage(conversation, seq)
	}
	return decodeMessage(conversation, seq, v)
}

// putMessage stores m and keeps its outbox entry in step with its state.
func putMessage(tx *bolt.Tx, id []byte, m Message) error {
	v := []byte{recordVersion}
	v = appendBytes(v, m.ID)
	v = appendBytes(v, m.ClientID)
	v = appendBytes(v, m.From)
	v = binary.AppendVarint(v, m.At.UnixMilli())
	v = appendBytes(v, m.Body)
	v = appendBytes(v, m.Payload)
	v = appendBytes(v, m.State)
	v = appendBytes(v, m.Reason)
	if err := tx.Bucket(bucketMsg).Put(be(id, m.Seq), v); err != nil {
		return err
	}
	out := binary.BigEndian.AppendUint64(make([]byte, 0, 32), uint64(m.At.UnixMilli()))
	out = be(append(out, id...), m.Seq)
	if m.State == Pending {
		return tx.Bucket(bucketOutbox).Put(out, nil)
	}
	return tx.Bucket(bucketOutbox).Delete(out)
}

func decodeMessage(conversation string, seq uint64, v []byte) (Message, error) {
	r := reader{b: v}
	r.version()
	m := Message{
		Conversation: conversation,
		Seq:          seq,
		ID:           string(r.bytes()),
		ClientID:     string(r.bytes()),
		From:         intern(r.bytes(), FromUser, FromBot),
		At:           r.time(),
		Body:         bytes.Clone(r.bytes()),
		Payload:      string(r.bytes()),
		State:        intern(r.bytes(), Pending, Delivered, Failed),
		Reason:       string(r.bytes()),
	}
	if r.bad {
		return Message{}, fmt.Errorf("message %d of conversation %s: corrupt record", seq, conversation)
	}
	if len(m.Body) == 0 {
		m.Body = nil
	}
	return m, nil
}

// claim is who dispatches a conversation's outbox, and until when.
type claim struct {
	owner string
	until time.Time
}

// putClaim stores c as the claim of conversation id.
func putClaim(tx *bolt.Tx, id []byte, c claim) error {
	v := []byte{recordVersion}
	v = appendBytes(v, c.owner)
	v = binary.AppendVarint(v, c.until.UnixMilli())
	return tx.Bucket(bucketClaim).Put(id, v)
}

// getClaim returns the claim of conversation id, with ok false when there
// is none.
func getClaim(tx *bolt.Tx, id []byte) (c claim, ok bool, err error) {
	v := tx.Bucket(bucketClaim).Get(id)
	if v == nil {
		return claim{}, false, nil
	}
	r := reader{b: v}
	r.version()
	c = claim{owner: string(r.bytes()), until: r.time()}
	if r.bad {
		return claim{}, false, fmt.Errorf("claim of conversation %x: corrupt record", id)
	}
	return c, true, nil
}

// intern returns the constant among known that b spells, saving an
// allocation per field in a replay, or else b as a new string.
func intern[S ~string](b []byte, known ...S) S {
	for _, k := range known {
		if string(b) == string(k) {
			return k
		}
	}
	return S(b)
}

// reader decodes a record; after the first error it returns zero values
// and sets bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) version() {
	if len(r.b) == 0 || r.b[0] != recordVersion {
		r.bad = true
		return
	}
	r.b = r.b[1:]
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) time() time.Time {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return time.Time{}
	}
	r.b = r.b[n:]
	return time.UnixMilli(v).UTC()
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
