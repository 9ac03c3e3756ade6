package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const fileSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

// TestLoadUsersSamplesTheWholePopulation: the sample comes from every part
// of every file, not from the first rows.
func TestLoadUsersSamplesTheWholePopulation(t *testing.T) {
	dir := t.TempDir()
	var csv, jsonl strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&csv, "u%04d,%s\n", i, fileSecret)
	}
	for i := 1000; i < 2000; i++ {
		fmt.Fprintf(&jsonl, `{"user":"u%04d","secret":"%s"}`+"\n", i, fileSecret)
	}
	a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.jsonl")
	os.WriteFile(a, []byte(csv.String()), 0o600)
	os.WriteFile(b, []byte(jsonl.String()), 0o600)

	users, population, err := loadUsers([]string{a, b}, 200, 42)
	if err != nil {
		t.Fatal(err)
	}
	if population != 2000 || len(users) != 200 {
		t.Fatalf("%d users of %d, want 200 of 2000", len(users), population)
	}
	quarters := make([]int, 4)
	seen := map[string]bool{}
	for _, u := range users {
		var n int
		fmt.Sscanf(u.id, "u%d", &n)
		quarters[n/500]++
		if seen[u.id] {
			t.Fatalf("%s picked twice", u.id)
		}
		seen[u.id] = true
	}
	for q, n := range quarters {
		// 50 expected in each; 20 is more than 4 standard deviations off.
		if n < 20 {
			t.Errorf("quarter %d of the population gave %d of the 200 users: %v", q, n, quarters)
		}
	}

	all, population, err := loadUsers([]string{a}, 5000, 1)
	if err != nil || len(all) != 1000 || population != 1000 {
		t.Errorf("asking for more than there are: %d of %d, %v; want all 1000", len(all), population, err)
	}
}

// TestUserFromRowCodes: the generator computes the codes an app with the
// imported secret shows, for the parameters the file gives.
func TestUserFromRowCodes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "u.csv")
	os.WriteFile(path, []byte("user,secret,digits,period,algorithm\nalice,"+strings.ToLower(fileSecret)+",8,60,sha256\nbob,"+fileSecret+"==,,,\n"), 0o600)
	users, _, err := loadUsers([]string{path}, 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_900_000_000, 0)
	want := map[string]totp.ValidateOpts{
		"alice": {Period: 60, Digits: otp.DigitsEight, Algorithm: otp.AlgorithmSHA256},
		"bob":   {Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1},
	}
	for _, u := range users {
		code, _, _ := u.next(now, 0)
		w, err := totp.GenerateCodeCustom(fileSecret, now, want[u.id])
		if err != nil {
			t.Fatal(err)
		}
		if code != w {
			t.Errorf("%s: code %s, want %s", u.id, code, w)
		}
	}
}
