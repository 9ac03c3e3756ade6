package framework

import (
	"bytes"
	"testing"
)

func TestSealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	s, err := newSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"secret":"JBSWY3DPEHPK3PXP"}`)
	sealed, err := s.seal("alice", "totp", plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("JBSWY3DPEHPK3PXP")) {
		t.Fatal("sealed blob contains the plaintext")
	}
	got, err := s.open("alice", "totp", sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open = %q, %v", got, err)
	}
	other, _ := newSealer(bytes.Repeat([]byte{8}, KeySize))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name           string
		s              *sealer
		user, provider string
		blob           []byte
	}{
		{"copied to another user", s, "bob", "totp", sealed},
		{"copied to another provider", s, "alice", "duo", sealed},
		{"length-prefix ambiguity", s, "alicet", "otp", sealed},
		{"wrong key", other, "alice", "totp", sealed},
		{"tampered", s, "alice", "totp", flipped},
		{"truncated", s, "alice", "totp", sealed[:10]},
		{"empty", s, "alice", "totp", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.s.open(tt.user, tt.provider, tt.blob); err == nil {
				t.Fatal("opened")
			}
		})
	}
	if _, err := newSealer(key[:16]); err == nil {
		t.Error("accepted a 16-byte key")
	}
}
