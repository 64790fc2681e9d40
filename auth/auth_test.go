package auth

import (
	"bytes"
	"strings"
	"testing"
)

func TestPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$") {
		t.Fatalf("hash %q is not a PHC argon2id string", h)
	}
	if !VerifyPassword(h, "correct horse") {
		t.Fatal("the right password does not verify")
	}
	if VerifyPassword(h, "correct horsE") {
		t.Fatal("a wrong password verifies")
	}
	if VerifyPassword("$argon2id$garbage", "x") || VerifyPassword("", "") {
		t.Fatal("a malformed hash verifies")
	}
	if _, err := HashPassword(""); err == nil {
		t.Fatal("an empty password was hashed")
	}
}

func TestTokens(t *testing.T) {
	a, ha := NewToken()
	b, hb := NewToken()
	if a == b || bytes.Equal(ha, hb) {
		t.Fatal("two tokens are equal")
	}
	if !strings.HasPrefix(a, TokenPrefix) || len(a) < 40 {
		t.Fatalf("token %q has the wrong shape", a)
	}
	if !bytes.Equal(HashToken(a), ha) {
		t.Fatal("HashToken disagrees with NewToken")
	}
}
