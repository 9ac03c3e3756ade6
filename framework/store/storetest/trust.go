package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/twofactor/twofactor/framework"
)

// trustTests are the framework.TrustTokenScanner subtests Run adds.
var trustTests = []struct {
	name string
	run  func(t *testing.T, s framework.Store)
}{
	{"TrustTokens/Scan", testScanTrustTokens},
	{"TrustTokens/Reseal", testResealTrustTokens},
}

// putDevices stores the devices (kept: up to 50 a user).
func putDevices(t *testing.T, s framework.Store, ds ...framework.RememberedDevice) {
	t.Helper()
	for _, d := range ds {
		if err := framework.PolicyStore(s).PutDevice(t.Context(), d, 50); err != nil {
			t.Fatalf("PutDevice(%s): %v", d.ID, err)
		}
	}
}

// testScanTrustTokens: the devices holding a trust token, in ID order,
// page by page; a device without one is left out.
func testScanTrustTokens(t *testing.T, s framework.Store) {
	sc := capability[framework.TrustTokenScanner](t, s)
	none := device("d2", "bob", framework.AudienceStaff, 0, 7)
	none.Provider, none.TrustToken = "totp", nil
	putDevices(t, s, device("d3", "alice", framework.AudienceStaff, 0, 7), none,
		device("d1", "bob", framework.AudienceClient, time.Hour, 7), device("d4", "carol", framework.AudienceStaff, 0, 7))
	var got []string
	after := ""
	for range 5 {
		page, err := sc.ScanTrustTokens(t.Context(), after, 2)
		if err != nil {
			t.Fatalf("ScanTrustTokens(%q): %v", after, err)
		}
		for _, d := range page {
			got = append(got, d.ID+"="+string(d.TrustToken))
			if d.ID == "d1" {
				sameDevice(t, d, device("d1", "bob", framework.AudienceClient, time.Hour, 7))
			}
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	if want := "[d1=sealed trust of d1 d3=sealed trust of d3 d4=sealed trust of d4]"; fmt.Sprint(got) != want {
		t.Errorf("scanned %q, want %s", got, want)
	}
}

// testResealTrustTokens: a token is replaced only if it still holds the
// value read; a batch is written whole or, if refused, not at all.
func testResealTrustTokens(t *testing.T, s framework.Store) {
	sc := capability[framework.TrustTokenScanner](t, s)
	putDevices(t, s, device("d1", "alice", framework.AudienceStaff, 0, 7), device("d2", "bob", framework.AudienceStaff, 0, 7))
	for _, bad := range [][]framework.TrustTokenReseal{
		{{DeviceID: "d1", Old: []byte("sealed trust of d1"), New: []byte("x")}, {DeviceID: "d1", Old: []byte("x"), New: []byte("y")}},
		{{DeviceID: "d1", Old: []byte("sealed trust of d1"), New: []byte("x")}, {DeviceID: "d2", Old: []byte("sealed trust of d2")}},
	} {
		if _, err := sc.ResealTrustTokens(t.Context(), bad); err == nil {
			t.Errorf("ResealTrustTokens(%+v) accepted", bad)
		}
	}
	written, err := sc.ResealTrustTokens(t.Context(), []framework.TrustTokenReseal{
		{DeviceID: "d2", Old: []byte("stale"), New: []byte("new of d2")},
		{DeviceID: "gone", Old: []byte("sealed trust of gone"), New: []byte("new of gone")},
		{DeviceID: "d1", Old: []byte("sealed trust of d1"), New: []byte("new of d1")},
	})
	if err != nil || fmt.Sprint(written) != "[false false true]" {
		t.Fatalf("ResealTrustTokens = %v, %v; want [false false true]", written, err)
	}
	page, err := sc.ScanTrustTokens(t.Context(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range page {
		got = append(got, d.ID+"="+string(d.TrustToken))
	}
	if want := "[d1=new of d1 d2=sealed trust of d2]"; fmt.Sprint(got) != want {
		t.Errorf("after the reseal: %q, want %s", got, want)
	}
}
