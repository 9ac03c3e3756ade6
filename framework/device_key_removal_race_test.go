package framework_test

import (
	"testing"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/providers/webauthn/webauthntest"
)

// TestDeviceRememberedDuringKeyRemovalSkipsNothing: TestDeviceRememberedDuringResetSkipsNothing
// for a lost security key, which is removed rather than reset (alice
// keeps her other key, so the enrollment stays active). The finder signs
// in with the lost key and asks to remember the browser; the allow is
// recorded, and before its device is stored alice removes the key. The
// device stored after the removal must skip nothing: the removal forgets
// the browsers the lost key vouched for, and the finder's was vouched for
// by nothing else.
func TestDeviceRememberedDuringKeyRemovalSkipsNothing(t *testing.T) {
	store, _ := openStore(t)
	keyRemovalDuringRemember(t, store, store)
}

// TestDeviceRememberedDuringKeyRemovalAcrossReplicas: the finder's
// verify on one replica, alice's removal on another, on one PostgreSQL
// database.
func TestDeviceRememberedDuringKeyRemovalAcrossReplicas(t *testing.T) {
	stores := pgReplicas(t, 2)
	keyRemovalDuringRemember(t, stores[0], stores[1])
}

// keyRemovalDuringRemember runs the race: the verify on a framework over
// verifyOn, the removal (in the middle of it) on one over removeOn.
func keyRemovalDuringRemember(t *testing.T, verifyOn, removeOn framework.Store) {
	wrapped := &resetBeforePutDevice{Store: verifyOn}
	clk, encKey := newClock(), newKey(t)
	pol := framework.Policy{Clients: framework.AudiencePolicy{RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 30}}}
	open := func(s framework.Store) *framework.Framework {
		fw, err := framework.New(t.Context(), framework.Options{Store: s, EncryptionKey: encKey,
			Providers: []framework.ProviderSpec{webauthnSpec()}, Now: clk.Now, Policy: pol})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fw.Close() })
		return fw
	}
	fw, remover := open(wrapped), open(removeOn)
	lost, kept := webauthntest.New(webauthnOrigin), webauthntest.New(webauthnOrigin)
	enrollKeys(t, fw, "alice", lost, kept)

	ran := false
	hook := func() {
		ran = true
		if _, err := remover.RemoveCredential(t.Context(), "alice", "webauthn", lost.ID()); err != nil {
			t.Errorf("RemoveCredential: %v", err)
		}
	}
	wrapped.hook.Store(&hook)
	st, err := fw.StartVerification(t.Context(), framework.StartInput{UserID: "alice", Provider: "webauthn", Audience: framework.AudienceClient})
	if err != nil {
		t.Fatal(err)
	}
	assertion, err := lost.Get(st.Public)
	if err != nil {
		t.Fatal(err)
	}
	res, err := fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "webauthn", Audience: framework.AudienceClient,
		TxID: st.TxID, Code: assertion, RememberDevice: true, DeviceLabel: "the finder's browser"})
	if !ran {
		t.Fatalf("the hook did not run (verify: %s/%s, %v): the test proved nothing", res.Outcome, res.Reason, err)
	}
	t.Logf("the verify answered: %s/%s token=%t, %v", res.Outcome, res.Reason, res.DeviceToken != "", err)
	if err != nil || res.DeviceToken == "" {
		return // no token given: nothing the finder can present
	}
	ch, err := fw.Challenge(t.Context(), framework.ChallengeInput{UserID: "alice", Audience: framework.AudienceClient, DeviceToken: res.DeviceToken})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Decision != framework.DecisionVerify {
		t.Errorf("the finder's browser after alice removed the lost key: %s/%s; want verify", ch.Decision, ch.Why)
	}
}

// refuseDeviceDeletes is a real fault of the SQLite store at path, as
// refuseAudit: a trigger fails every delete of a remembered device until
// the returned function drops it.
func refuseDeviceDeletes(t *testing.T, path string) (restore func()) {
	t.Helper()
	return sqliteTrigger(t, path, "devices_down", "BEFORE DELETE ON remembered_devices", "devices unavailable")
}

// TestKeyRemovalThatFailsForgetsTheKeysBrowsers: the finder of alice's
// lost key signed in with it and had the browser remembered. Alice
// removes the key while the store refuses to forget devices; she is
// answered an error and does it again, as told, once the store is back.
// Then the key is gone and the finder's browser skips nothing. Before,
// the first removal wrote the key's removal and then failed to forget
// the devices: its retry found no such key (nothing to do), and the
// browser the lost key vouched for kept skipping the second factor.
func TestKeyRemovalThatFailsForgetsTheKeysBrowsers(t *testing.T) {
	store, path := openStore(t)
	clk := newClock()
	pol := framework.Policy{Clients: framework.AudiencePolicy{RememberDevice: framework.RememberDevicePolicy{Enabled: true, Days: 30}}}
	fw, err := framework.New(t.Context(), framework.Options{Store: store, EncryptionKey: newKey(t),
		Providers: []framework.ProviderSpec{webauthnSpec()}, Now: clk.Now, Policy: pol})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	lost, kept := webauthntest.New(webauthnOrigin), webauthntest.New(webauthnOrigin)
	enrollKeys(t, fw, "alice", lost, kept)
	st, err := fw.StartVerification(t.Context(), framework.StartInput{UserID: "alice", Provider: "webauthn", Audience: framework.AudienceClient})
	if err != nil {
		t.Fatal(err)
	}
	assertion, err := lost.Get(st.Public)
	if err != nil {
		t.Fatal(err)
	}
	res, err := fw.Verify(t.Context(), framework.VerifyInput{UserID: "alice", Provider: "webauthn", Audience: framework.AudienceClient,
		TxID: st.TxID, Code: assertion, RememberDevice: true, DeviceLabel: "the finder's browser"})
	if err != nil || res.DeviceToken == "" {
		t.Fatalf("the finder's verify: %+v %v, want an allow with a device token", res, err)
	}

	restore := refuseDeviceDeletes(t, path)
	_, err = fw.RemoveCredential(t.Context(), "alice", "webauthn", lost.ID())
	restore()
	if err == nil {
		t.Fatal("the removal with the store refusing to forget devices answered no error: the test proved nothing")
	}
	t.Logf("the removal during the fault: %v", err)
	left, err := fw.RemoveCredential(t.Context(), "alice", "webauthn", lost.ID())
	t.Logf("its retry: %v %v", left, err)
	creds, err := fw.Credentials(t.Context(), "alice", "webauthn")
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 1 || creds[0].ID != kept.ID() {
		t.Fatalf("after the removal and its retry alice holds %v, want only the kept key", creds)
	}
	ch, err := fw.Challenge(t.Context(), framework.ChallengeInput{UserID: "alice", Audience: framework.AudienceClient, DeviceToken: res.DeviceToken})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Decision != framework.DecisionVerify {
		t.Errorf("the finder's browser after alice removed the lost key: %s/%s; want verify", ch.Decision, ch.Why)
	}
}
