package framework

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twofactor/twofactor/sdk"
)

// Audit events of the login policy.
const (
	EventChallenge      = "challenge"
	EventDeviceRemember = "device.remember"
	EventDeviceRevoke   = "device.revoke"
)

// PolicyStore keeps what the login policy counts and remembers: grace
// logins per user and audience, and remembered devices (by token hash
// only, never the token).
type PolicyStore interface {
	// UseGraceLogin counts one grace login for the user and audience if
	// fewer than limit were counted, atomically (two replicas cannot both
	// take the last one). It returns the count after the call and whether
	// this call was granted one. A limit below 1 grants nothing.
	UseGraceLogin(ctx context.Context, userID string, aud Audience, limit int) (used int, granted bool, err error)
	// PutDevice stores a remembered device. In the same transaction it
	// drops the user's devices expired at d.CreatedAt and then the user's
	// oldest devices beyond keep, so a user has at most keep of them.
	PutDevice(ctx context.Context, d RememberedDevice, keep int) error
	// DeviceByHash returns the device with this token hash, or
	// ErrNotFound.
	DeviceByHash(ctx context.Context, tokenHash []byte) (RememberedDevice, error)
	// ListDevices returns a user's devices, oldest first (by CreatedAt,
	// then ID); an empty list for an unknown user.
	ListDevices(ctx context.Context, userID string) ([]RememberedDevice, error)
	// DeleteDevice removes one of the user's devices; ErrNotFound if the
	// user has none with that id (also when another user has).
	DeleteDevice(ctx context.Context, userID, id string) error
	// DeleteDevices removes every device of the user and returns how many.
	DeleteDevices(ctx context.Context, userID string) (int, error)
}

// RememberedDevice is a device a user chose to remember after a verify, as
// stored. The token itself is given to the caller once and never stored.
type RememberedDevice struct {
	ID        string // random, for listing and revoking; reveals nothing of the token
	UserID    string
	Audience  Audience
	TokenHash []byte // SHA-256 of the token's 32 random bytes
	Label     string // what the user sees in a list: a user agent, say
	CreatedAt time.Time
	ExpiresAt time.Time
	// Provider is the provider the user answered when the device was
	// remembered; TrustToken, sealed, is that provider's own token for the
	// device (see sdk.VerifyResponse.TrustToken), nil when it gave none.
	Provider   string
	TrustToken []byte
}

// DeviceInfo is what callers may see of a remembered device.
type DeviceInfo struct {
	ID        string
	Audience  Audience
	Label     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

const (
	deviceTokenBytes = 32 // 256 bits: a fast unsalted hash is then enough
	// MaxDeviceLabel bounds a remembered device's label, in characters.
	MaxDeviceLabel = 200
	// maxDevicesPerUser bounds the table: a user's oldest devices are
	// forgotten beyond it.
	maxDevicesPerUser = 50
)

// checkDeviceLabel accepts a label of at most MaxDeviceLabel printable
// characters (a user agent).
func checkDeviceLabel(label string) error {
	if !utf8.ValidString(label) || utf8.RuneCountInString(label) > MaxDeviceLabel {
		return errorf(CodeInvalidRequest, nil, "device_label must be at most %d characters of valid UTF-8", MaxDeviceLabel)
	}
	for _, r := range label {
		if !unicode.IsPrint(r) {
			return errorf(CodeInvalidRequest, nil, "device_label must contain only printable characters")
		}
	}
	return nil
}

// checkRemember validates a verify's remember-device fields before anything
// is decided, so a bad label is refused rather than costing a code.
func checkRemember(in VerifyInput) error {
	return checkDeviceLabel(in.DeviceLabel)
}

func hashDeviceToken(raw []byte) []byte {
	h := sha256.Sum256(raw)
	return h[:]
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// rememberDevice issues a remembered-device token after an allow, when the
// caller asked and the audience's policy allows it. Only a second factor
// actually answered earns one: an allow by failmode safe (the provider's
// backend was down) or without a prompt (Duo's bypass, a device Duo
// remembers) is no proof of the device. The provider's trust token, if it
// gave one, is kept sealed with the device.
func (f *Framework) rememberDevice(ctx context.Context, in VerifyInput, res VerifyResult) (VerifyResult, error) {
	pol := f.registry().policy.For(in.Audience).RememberDevice
	if !in.RememberDevice || !pol.Enabled || res.Outcome != sdk.Allow || res.Reason != "" || res.Unprompted {
		return res, nil
	}
	raw := make([]byte, deviceTokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return VerifyResult{}, errorf(CodeInternal, err, "random token")
	}
	now := f.now()
	d := RememberedDevice{
		ID: randomString(12), UserID: in.UserID, Audience: in.Audience, TokenHash: hashDeviceToken(raw),
		Label: in.DeviceLabel, CreatedAt: now, ExpiresAt: now.Add(time.Duration(pol.Days) * 24 * time.Hour),
		Provider: in.Provider,
	}
	if res.trustToken != "" {
		sealed, err := f.seal.seal(in.UserID, trustBinding(d.ID, in.Provider), []byte(res.trustToken))
		if err != nil {
			return VerifyResult{}, errorf(CodeInternal, err, "seal trust token")
		}
		d.TrustToken = sealed
	}
	if err := f.store.PutDevice(ctx, d, maxDevicesPerUser); err != nil {
		return VerifyResult{}, errorf(CodeInternal, err, "store remembered device")
	}
	if changed, err := f.changedSinceAllow(ctx, in, res); err != nil || changed {
		// Not handed out, so no one can present it; the row is dropped
		// for tidiness only.
		_ = f.store.DeleteDevice(ctx, in.UserID, d.ID)
		if err != nil {
			return VerifyResult{}, err
		}
		return res, nil
	}
	if err := f.audit(ctx, AuditEntry{Event: EventDeviceRemember, UserID: in.UserID, Provider: in.Provider, Audience: in.Audience,
		Outcome: "remembered", ClientIP: in.ClientIP, Details: map[string]string{
			"device_id": d.ID, "expires_at": d.ExpiresAt.UTC().Format(time.RFC3339), "label": d.Label,
		}}); err != nil {
		// Not audited, so not issued: take it back.
		_ = f.store.DeleteDevice(ctx, in.UserID, d.ID)
		return VerifyResult{}, err
	}
	res.DeviceToken = base64.RawURLEncoding.EncodeToString(raw)
	res.DeviceID = d.ID
	return res, nil
}

// changedSinceAllow says whether the enrollment res's allow wrote (its
// version) was changed since, read after the allow's device was stored.
// A removal of the security key the allow was made with (RemoveCredential)
// forgets the user's devices after its own write: a device stored after
// that forgetting would outlive the removal, and checkDevice cannot tell
// (the enrollment stays active, its ConfirmedAt unchanged). Read after the
// store, either the removal comes before this read (the version moved, and
// the device is not given) or its forgetting comes after the device (and
// removes it). Any other change in that moment (another login of the
// user's) costs the device only: the allow stands, and the next login
// asks for the factor. A decision that wrote no state (version 0) is not
// checked: no credential of it can be removed without a write.
func (f *Framework) changedSinceAllow(ctx context.Context, in VerifyInput, res VerifyResult) (bool, error) {
	if res.version == 0 {
		return false, nil
	}
	e, err := f.store.Get(ctx, in.UserID, in.Provider)
	switch {
	case errors.Is(err, ErrNotFound):
		return true, nil
	case err != nil:
		return false, errorf(CodeInternal, err, "read enrollment")
	case e.Version != res.version:
		f.log.Warn("device not remembered: the factor changed while its allow was recorded", "provider", in.Provider, "user", in.UserID)
		return true, nil
	}
	return false, nil
}

// trustBinding is what a device's sealed trust token is bound to besides
// the user: the device and the provider. Provider names cannot hold a NUL,
// so no enrollment's binding can equal it.
func trustBinding(deviceID, provider string) string {
	return "trust\x00" + deviceID + "\x00" + provider
}

// trustTokenFor returns the provider's trust token kept with the device
// in.DeviceToken names, when that is a live remembered device (as
// Challenge would honour it) of this user and audience remembered with
// this provider; "" otherwise. A token that no longer opens (sealed under
// an encryption key since retired) is dropped: the provider then asks.
func (f *Framework) trustTokenFor(ctx context.Context, in VerifyInput) (string, error) {
	if in.DeviceToken == "" {
		return "", nil
	}
	pol := f.registry().policy.For(in.Audience)
	d, why, err := f.checkDevice(ctx, ChallengeInput{UserID: in.UserID, Audience: in.Audience, DeviceToken: in.DeviceToken}, pol, f.now())
	if err != nil || why != "" || d.Provider != in.Provider || len(d.TrustToken) == 0 {
		return "", err
	}
	plain, err := f.seal.open(in.UserID, trustBinding(d.ID, d.Provider), d.TrustToken)
	if err != nil {
		f.log.Warn("remembered device's trust token does not open; the provider will ask", "user", in.UserID, "device", d.ID)
		return "", nil
	}
	return string(plain), nil
}

// checkDevice decides whether a presented token is a live remembered
// device for this user and audience. It returns why not ("" when it is):
// remember_disabled, malformed, unknown, other_user, other_audience,
// expired, revoked.
func (f *Framework) checkDevice(ctx context.Context, in ChallengeInput, pol AudiencePolicy, now time.Time) (RememberedDevice, string, error) {
	if !pol.RememberDevice.Enabled {
		return RememberedDevice{}, "remember_disabled", nil
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(in.DeviceToken)
	if err != nil || len(raw) != deviceTokenBytes {
		return RememberedDevice{}, "malformed", nil
	}
	d, err := f.store.DeviceByHash(ctx, hashDeviceToken(raw))
	if errors.Is(err, ErrNotFound) {
		return RememberedDevice{}, "unknown", nil
	}
	if err != nil {
		return RememberedDevice{}, "", errorf(CodeInternal, pastDeadline(ctx, err), "read remembered device")
	}
	switch {
	case d.UserID != in.UserID:
		return RememberedDevice{}, "other_user", nil
	case d.Audience != in.Audience:
		return RememberedDevice{}, "other_audience", nil
	// A policy shortened since the token was issued shortens it too.
	case !now.Before(d.ExpiresAt), !now.Before(d.CreatedAt.Add(time.Duration(pol.RememberDevice.Days) * 24 * time.Hour)):
		return RememberedDevice{}, "expired", nil
	}
	// A device vouches for the enrollment it was remembered with, and no
	// other: one stored after that enrollment was reset (its verify's
	// allow was recorded before the reset, its device after the reset
	// forgot the user's devices) skips nothing, and neither does it skip
	// the factor enrolled since in the same provider. Devices stored before
	// the provider was kept with them (Provider "") were forgotten by any
	// reset since.
	if d.Provider != "" {
		e, err := f.store.Get(ctx, in.UserID, d.Provider)
		switch {
		case errors.Is(err, ErrNotFound):
			return RememberedDevice{}, "revoked", nil
		case err != nil:
			return RememberedDevice{}, "", errorf(CodeInternal, pastDeadline(ctx, err), "read enrollment")
		case e.Status != StatusActive || d.CreatedAt.Before(e.ConfirmedAt):
			return RememberedDevice{}, "revoked", nil
		}
	}
	return d, "", nil
}

// Devices lists a user's remembered devices that have not expired, oldest
// first. Neither the token nor its hash is part of the answer.
func (f *Framework) Devices(ctx context.Context, userID string) ([]DeviceInfo, error) {
	if err := ValidateUserID(userID); err != nil {
		return nil, err
	}
	list, err := f.store.ListDevices(ctx, userID)
	if err != nil {
		return nil, errorf(CodeInternal, err, "list remembered devices")
	}
	now := f.now()
	out := make([]DeviceInfo, 0, len(list))
	for _, d := range list {
		if now.Before(d.ExpiresAt) {
			out = append(out, DeviceInfo{ID: d.ID, Audience: d.Audience, Label: d.Label, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt})
		}
	}
	return out, nil
}

// RevokeDevice forgets one of the user's remembered devices: its token
// skips nothing any more. CodeNotFound if the user has no such device.
func (f *Framework) RevokeDevice(ctx context.Context, userID, id string) error {
	if err := ValidateUserID(userID); err != nil {
		return err
	}
	err := f.store.DeleteDevice(ctx, userID, id)
	if errors.Is(err, ErrNotFound) {
		return errorf(CodeNotFound, nil, "user has no remembered device with that id")
	}
	if err != nil {
		return errorf(CodeInternal, err, "revoke remembered device")
	}
	f.log.Info("remembered device revoked", "user", userID, "device", id)
	return f.audit(ctx, AuditEntry{Event: EventDeviceRevoke, UserID: userID, Outcome: "revoked",
		Details: map[string]string{"device_id": id, "count": "1"}})
}

// RevokeDevices forgets every remembered device of the user and returns
// how many there were.
func (f *Framework) RevokeDevices(ctx context.Context, userID string) (int, error) {
	if err := ValidateUserID(userID); err != nil {
		return 0, err
	}
	return f.revokeAllDevices(ctx, userID, "")
}

// revokeAllDevices forgets every device of the user. A revocation on the
// caller's request is always audited; one caused by something else (reason,
// such as "enrollment.reset") only when there was a device to revoke.
func (f *Framework) revokeAllDevices(ctx context.Context, userID, reason string) (int, error) {
	n, err := f.store.DeleteDevices(ctx, userID)
	if err != nil {
		return 0, errorf(CodeInternal, err, "revoke remembered devices")
	}
	if n == 0 && reason != "" {
		return 0, nil
	}
	f.log.Info("remembered devices revoked", "user", userID, "count", n, "reason", reason)
	return n, f.audit(ctx, AuditEntry{Event: EventDeviceRevoke, UserID: userID, Outcome: "revoked", Reason: reason,
		Details: map[string]string{"count": itoa(n)}})
}

// PollInput polls a pending verification (a push) and, when it is
// approved, may remember the device as VerifyInput can.
type PollInput struct {
	UserID         string
	TxID           string
	RememberDevice bool
	DeviceLabel    string
	ClientIP       string
}

// Poll is PollVerification with "remember this device": on an allow, a
// device token is issued as Verify issues one.
func (f *Framework) Poll(ctx context.Context, in PollInput) (VerifyResult, error) {
	if err := checkDeviceLabel(in.DeviceLabel); err != nil {
		return VerifyResult{}, err
	}
	if err := CheckClientIP(in.ClientIP); err != nil {
		return VerifyResult{}, err
	}
	if !in.RememberDevice {
		return f.pollVerification(ctx, in.UserID, in.TxID, in.ClientIP)
	}
	if err := ValidateUserID(in.UserID); err != nil {
		return VerifyResult{}, err
	}
	if !issuedTxID(in.TxID) {
		return VerifyResult{}, errNoPending()
	}
	// Its own reads and writes end at a decision's deadline, as the poll's
	// do (PollVerification has its own).
	dctx, cancel := decisionContext(ctx)
	defer cancel()
	// Read before polling: a decided transaction is deleted by the poll.
	tx, err := f.store.GetTransaction(dctx, in.UserID, in.TxID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return VerifyResult{}, errorf(CodeInternal, pastDeadline(dctx, err), "read transaction")
	}
	res, perr := f.pollVerification(ctx, in.UserID, in.TxID, in.ClientIP)
	if perr != nil || err != nil {
		return res, perr
	}
	return f.rememberDevice(dctx, VerifyInput{UserID: in.UserID, Provider: tx.Provider, Audience: tx.Audience,
		RememberDevice: true, DeviceLabel: in.DeviceLabel, ClientIP: in.ClientIP}, res)
}

// DeviceByToken returns the user's remembered device that token (a device
// token a verify gave) stands for, so a page can mark "this device" in the
// user's list. CodeNotFound when the token is no device of this user's or
// has expired.
func (f *Framework) DeviceByToken(ctx context.Context, userID, token string) (DeviceInfo, error) {
	if err := ValidateUserID(userID); err != nil {
		return DeviceInfo{}, err
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != deviceTokenBytes {
		return DeviceInfo{}, errorf(CodeNotFound, nil, "not a remembered device of this user")
	}
	d, err := f.store.DeviceByHash(ctx, hashDeviceToken(raw))
	switch {
	case errors.Is(err, ErrNotFound):
		return DeviceInfo{}, errorf(CodeNotFound, nil, "not a remembered device of this user")
	case err != nil:
		return DeviceInfo{}, errorf(CodeInternal, err, "read remembered device")
	case d.UserID != userID || !f.now().Before(d.ExpiresAt):
		return DeviceInfo{}, errorf(CodeNotFound, nil, "not a remembered device of this user")
	}
	return DeviceInfo{ID: d.ID, Audience: d.Audience, Label: d.Label, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt}, nil
}
