package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/burst"
)

// policyTests are the framework.PolicyStore subtests Run adds.
var policyTests = []struct {
	name string
	run  func(t *testing.T, s framework.Store)
}{
	{"Policy/GraceLogins", testGraceLogins},
	{"Policy/GraceLoginsConcurrent", testGraceLoginsConcurrent},
	{"Policy/DeviceRoundTrip", testDeviceRoundTrip},
	{"Policy/DeviceDelete", testDeviceDelete},
	{"Policy/DevicePrune", testDevicePrune},
	{"Policy/DeviceHashUnique", testDeviceHashUnique},
}

func testGraceLogins(t *testing.T, s framework.Store) {
	p := framework.PolicyStore(s)
	ctx := t.Context()
	use := func(user string, aud framework.Audience, limit, wantUsed int, wantGranted bool) {
		t.Helper()
		used, granted, err := p.UseGraceLogin(ctx, user, aud, limit)
		if err != nil || used != wantUsed || granted != wantGranted {
			t.Fatalf("UseGraceLogin(%q, %s, %d) = %d, %v, %v; want %d, %v", user, aud, limit, used, granted, err, wantUsed, wantGranted)
		}
	}
	use("alice", framework.AudienceStaff, 0, 0, false) // a zero limit counts nothing
	use("alice", framework.AudienceStaff, 2, 1, true)
	use("alice", framework.AudienceStaff, 2, 2, true)
	use("alice", framework.AudienceStaff, 2, 2, false)
	use("alice", framework.AudienceStaff, 2, 2, false)
	// Per audience and per user.
	use("alice", framework.AudienceClient, 2, 1, true)
	use("bob", framework.AudienceStaff, 2, 1, true)
	// A raised limit grants more; a lowered one grants none.
	use("alice", framework.AudienceStaff, 3, 3, true)
	use("alice", framework.AudienceStaff, 1, 3, false)
}

// testGraceLoginsConcurrent: replicas racing for the last grace logins
// never grant more than the limit.
func testGraceLoginsConcurrent(t *testing.T, s framework.Store) {
	p := framework.PolicyStore(s)
	const limit = 5
	granted := burst.Count(concurrency, func(int) bool {
		_, ok, err := p.UseGraceLogin(t.Context(), "alice", framework.AudienceStaff, limit)
		if err != nil {
			t.Error(err)
		}
		return ok
	})
	if granted[true] != limit {
		t.Errorf("%d grace logins granted, limit %d", granted[true], limit)
	}
	if used, ok, _ := p.UseGraceLogin(t.Context(), "alice", framework.AudienceStaff, limit); used != limit || ok {
		t.Errorf("after the race: used %d, granted %v", used, ok)
	}
}

func device(id, user string, aud framework.Audience, created time.Duration, days int) framework.RememberedDevice {
	h := sha256.Sum256([]byte("token of " + id))
	return framework.RememberedDevice{
		ID: id, UserID: user, Audience: aud, TokenHash: h[:], Label: "Mozilla/5.0 (X11; Linux) — " + id,
		CreatedAt: at(created), ExpiresAt: at(created + time.Duration(days)*24*time.Hour),
		Provider: "duo", TrustToken: []byte("sealed trust of " + id),
	}
}

func sameDevice(t *testing.T, got, want framework.RememberedDevice) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.Audience != want.Audience || got.Label != want.Label ||
		!bytes.Equal(got.TokenHash, want.TokenHash) || got.Provider != want.Provider || !bytes.Equal(got.TrustToken, want.TrustToken) {
		t.Errorf("device = %+v, want %+v", got, want)
	}
	if d := timeDiff(got.CreatedAt, want.CreatedAt); d != "" {
		t.Errorf("CreatedAt: %s", d)
	}
	if d := timeDiff(got.ExpiresAt, want.ExpiresAt); d != "" {
		t.Errorf("ExpiresAt: %s", d)
	}
}

func testDeviceRoundTrip(t *testing.T, s framework.Store) {
	p := framework.PolicyStore(s)
	ctx := t.Context()
	a1 := device("dev-a1", "alice", framework.AudienceStaff, 0, 30)
	a2 := device("dev-a2", "alice", framework.AudienceClient, time.Minute, 7)
	b1 := device("dev-b1", "bob", framework.AudienceStaff, 0, 30)
	b1.Provider, b1.TrustToken = "totp", nil // a provider that gives no trust token
	for _, d := range []framework.RememberedDevice{a2, a1, b1} {
		if err := p.PutDevice(ctx, d, 50); err != nil {
			t.Fatalf("PutDevice(%s): %v", d.ID, err)
		}
	}
	got, err := p.DeviceByHash(ctx, a2.TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	sameDevice(t, got, a2)
	unknown := sha256.Sum256([]byte("no such token"))
	if _, err := p.DeviceByHash(ctx, unknown[:]); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("unknown hash: %v, want ErrNotFound", err)
	}
	list, err := p.ListDevices(ctx, "alice")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListDevices(alice) = %+v, %v", list, err)
	}
	sameDevice(t, list[0], a1) // oldest first
	sameDevice(t, list[1], a2)
	if got, err := p.DeviceByHash(ctx, b1.TokenHash); err != nil || got.TrustToken != nil {
		t.Errorf("device without a trust token: %+v, %v; want TrustToken nil", got, err)
	}
	if list, err := p.ListDevices(ctx, "nobody"); err != nil || list == nil || len(list) != 0 {
		t.Errorf("unknown user: %#v, %v; want an empty, non-nil list", list, err)
	}
}

func testDeviceDelete(t *testing.T, s framework.Store) {
	p := framework.PolicyStore(s)
	ctx := t.Context()
	for _, d := range []framework.RememberedDevice{
		device("dev-a1", "alice", framework.AudienceStaff, 0, 30),
		device("dev-a2", "alice", framework.AudienceStaff, time.Second, 30),
		device("dev-b1", "bob", framework.AudienceStaff, 0, 30),
	} {
		if err := p.PutDevice(ctx, d, 50); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.DeleteDevice(ctx, "alice", "dev-b1"); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("alice deleted bob's device: %v", err)
	}
	if err := p.DeleteDevice(ctx, "alice", "dev-a1"); err != nil {
		t.Fatal(err)
	}
	if err := p.DeleteDevice(ctx, "alice", "dev-a1"); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	gone := device("dev-a1", "", "", 0, 0)
	if _, err := p.DeviceByHash(ctx, gone.TokenHash); !errors.Is(err, framework.ErrNotFound) {
		t.Errorf("deleted device still found: %v", err)
	}
	if n, err := p.DeleteDevices(ctx, "alice"); err != nil || n != 1 {
		t.Errorf("DeleteDevices(alice) = %d, %v; want 1", n, err)
	}
	if n, err := p.DeleteDevices(ctx, "alice"); err != nil || n != 0 {
		t.Errorf("DeleteDevices(alice) again = %d, %v; want 0", n, err)
	}
	if list, _ := p.ListDevices(ctx, "bob"); len(list) != 1 {
		t.Errorf("bob's devices: %+v", list)
	}
}

// testDevicePrune: a put drops the user's expired devices and keeps at
// most keep, the newest; other users are untouched.
func testDevicePrune(t *testing.T, s framework.Store) {
	p := framework.PolicyStore(s)
	ctx := t.Context()
	short := device("dev-short", "alice", framework.AudienceStaff, 0, 1)
	puts := []framework.RememberedDevice{
		short,
		device("dev-1", "alice", framework.AudienceStaff, time.Hour, 30),
		device("dev-2", "alice", framework.AudienceClient, 2*time.Hour, 30),
		device("dev-bob", "bob", framework.AudienceStaff, 0, 1),
	}
	for _, d := range puts {
		if err := p.PutDevice(ctx, d, 3); err != nil {
			t.Fatal(err)
		}
	}
	// Two days later dev-short has expired.
	if err := p.PutDevice(ctx, device("dev-3", "alice", framework.AudienceStaff, 48*time.Hour, 30), 3); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, p, "alice", "dev-1", "dev-2", "dev-3")
	if err := p.PutDevice(ctx, device("dev-4", "alice", framework.AudienceStaff, 49*time.Hour, 30), 3); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, p, "alice", "dev-2", "dev-3", "dev-4")
	wantIDs(t, p, "bob", "dev-bob") // expired, but only a put for bob prunes bob
}

func wantIDs(t *testing.T, p framework.PolicyStore, user string, ids ...string) {
	t.Helper()
	list, err := p.ListDevices(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range list {
		got = append(got, d.ID)
	}
	if len(got) != len(ids) {
		t.Fatalf("%s's devices = %v, want %v", user, got, ids)
	}
	for i := range ids {
		if got[i] != ids[i] {
			t.Fatalf("%s's devices = %v, want %v", user, got, ids)
		}
	}
}

// testDeviceHashUnique: a token hash names one device; a second put of the
// same hash fails and changes nothing.
func testDeviceHashUnique(t *testing.T, s framework.Store) {
	p := framework.PolicyStore(s)
	d := device("dev-1", "alice", framework.AudienceStaff, 0, 30)
	if err := p.PutDevice(t.Context(), d, 50); err != nil {
		t.Fatal(err)
	}
	twin := d
	twin.ID, twin.UserID = "dev-2", "mallory"
	if err := p.PutDevice(t.Context(), twin, 50); err == nil {
		t.Error("a second device with the same token hash was stored")
	}
	got, err := p.DeviceByHash(t.Context(), d.TokenHash)
	if err != nil || got.UserID != "alice" {
		t.Errorf("DeviceByHash = %+v, %v", got, err)
	}
	if list, _ := p.ListDevices(t.Context(), "mallory"); len(list) != 0 {
		t.Errorf("mallory has %+v", list)
	}
}
