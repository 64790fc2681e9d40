package margen

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"
)

// AuditKey is the secret that keys the audit chain (HMAC-SHA256) and from
// which the checkpoint signing key is derived. It is kept outside the
// database (a file or the environment): whoever can write the database but
// does not hold the key cannot rewrite history without the check noticing.
// Every process on one database must use the same key.
type AuditKey []byte

// AuditKeySize is the size of a generated key.
const AuditKeySize = 32

// ParseAuditKey reads a key written as hex or base64 (standard or URL,
// padded or not), at least 16 bytes.
func ParseAuditKey(s string) (AuditKey, error) {
	s = strings.TrimSpace(s)
	var k []byte
	var err error
	if k, err = hex.DecodeString(s); err != nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if k, err = enc.DecodeString(s); err == nil {
				break
			}
		}
	}
	if err != nil {
		return nil, errors.New("audit key: not hex or base64")
	}
	if len(k) < 16 {
		return nil, fmt.Errorf("audit key: %d bytes, want at least 16", len(k))
	}
	return AuditKey(k), nil
}

// String never shows the key, only its id.
func (k AuditKey) String() string { return "audit-key:" + k.ID() }

// ID names the key without revealing it; the organisation row records the
// id of the key its chain is sealed with, so a wrong key is reported as
// such. An empty key (tests, keyless stores) has the id "unkeyed".
func (k AuditKey) ID() string {
	if len(k) == 0 {
		return "unkeyed"
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte("margen audit key id v1"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Hash is the keyed link of an entry of a sealed chain: HMAC-SHA256 under
// the key of the previous hash, the seq and every field, Rows included,
// length-prefixed so no two entries encode alike.
func (k AuditKey) Hash(e *AuditEntry) string { return k.Hasher().Hash(e) }

// Hasher returns a ChainHasher for the key.
func (k AuditKey) Hasher() *ChainHasher { return &ChainHasher{mac: hmac.New(sha256.New, k)} }

// ChainHasher computes AuditKey.Hash for many entries, reusing its state
// (one per goroutine: it is not safe for concurrent use).
type ChainHasher struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
	hex [2 * sha256.Size]byte
}

// Hash is AuditKey.Hash.
func (h *ChainHasher) Hash(e *AuditEntry) string {
	b := h.buf[:0]
	put := func(s string) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	put("margen audit v2")
	put(e.PrevHash)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	// The time as text, length-prefixed.
	n := len(b)
	b = binary.BigEndian.AppendUint64(b, 0)
	b = e.At.UTC().AppendFormat(b, time.RFC3339Nano)
	binary.BigEndian.PutUint64(b[n:], uint64(len(b)-n-8))
	put(e.Actor)
	put(string(e.Action))
	put(e.Subject)
	put(string(e.Data))
	put(e.Rows)
	h.buf = b
	h.mac.Reset()
	h.mac.Write(b)
	hex.Encode(h.hex[:], h.mac.Sum(h.sum[:0]))
	return string(h.hex[:])
}

// SigningKey is the Ed25519 key that signs checkpoints, derived
// deterministically from the audit key (its seed is an HMAC of a fixed
// label), so a verifier can be given the public key alone.
func (k AuditKey) SigningKey() ed25519.PrivateKey {
	m := hmac.New(sha256.New, k)
	m.Write([]byte("margen checkpoint signing key v1"))
	return ed25519.NewKeyFromSeed(m.Sum(nil))
}

// PublicKey is the checkpoint verification key.
func (k AuditKey) PublicKey() ed25519.PublicKey {
	return k.SigningKey().Public().(ed25519.PublicKey)
}

// Checkpoint is a signed statement of an organisation's audit chain head:
// whoever keeps it can later prove that the history they are shown extends
// it (the entry at Seq still has Hash, and the chain from it on verifies).
type Checkpoint struct {
	Org       string    `json:"org"` // slug
	OrgID     string    `json:"org_id"`
	Seq       int64     `json:"seq"`
	Hash      string    `json:"hash"`
	At        time.Time `json:"at"`
	KeyID     string    `json:"key_id"`
	PublicKey string    `json:"public_key"` // base64 Ed25519
	Signature string    `json:"signature"`  // base64 Ed25519 over Message
}

// Message is what the signature covers.
func (c *Checkpoint) Message() []byte {
	return []byte(fmt.Sprintf("margen checkpoint v1\n%s\n%s\n%d\n%s\n%s\n", c.Org, c.OrgID, c.Seq, c.Hash,
		c.At.UTC().Format(time.RFC3339Nano)))
}

// SignCheckpoint fills the key id, public key and signature of c.
func (k AuditKey) SignCheckpoint(c *Checkpoint) {
	c.At = c.At.UTC()
	c.KeyID = k.ID()
	c.PublicKey = base64.StdEncoding.EncodeToString(k.PublicKey())
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(k.SigningKey(), c.Message()))
}

// VerifyCheckpoint checks c's signature against pub (the checkpoint's own
// public key is not trusted: the verifier supplies the one it knows).
func VerifyCheckpoint(c *Checkpoint, pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, c.Message(), sig) {
		return errors.New("checkpoint signature does not verify with this public key")
	}
	return nil
}

// MarshalCheckpoint is one JSON line of a checkpoint file.
func MarshalCheckpoint(c *Checkpoint) []byte {
	b, _ := json.Marshal(c)
	return append(b, '\n')
}
