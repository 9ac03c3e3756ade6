package framework_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/sqlite"
	"github.com/twofactor/twofactor/internal/testbin"
	totpprovider "github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// TestMain builds the real plugin binaries once for every test and
// benchmark in this package, and removes them afterwards.
func TestMain(m *testing.M) { testbin.Main(m) }

// totpBinaryName is the file name of the TOTP plugin built by testbin.
const totpBinaryName = framework.BinaryPrefix + "totp"

// pluginPath returns the shared, freshly built TOTP plugin binary.
func pluginPath(tb testing.TB) string {
	tb.Helper()
	dir, err := testbin.Dir()
	if err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(dir, totpBinaryName)
}

// copyPlugin copies the TOTP plugin into a directory of its own, named
// name, so that a test can find its processes (and only its processes) by
// directory, or pin its checksum, without touching the shared binary.
// Callers must not run in parallel with a test that starts processes: a
// fork while the new file is still open for writing would make its exec
// fail with ETXTBSY.
func copyPlugin(tb testing.TB, name string) string {
	tb.Helper()
	src, err := os.Open(pluginPath(tb))
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(tb.TempDir(), name)
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// start is an arbitrary instant on a 30-second step boundary, far from
// the Unix epoch so that step 0 (reserved by the provider) is never near.
var start = time.Date(2030, time.March, 4, 5, 6, 0, 0, time.UTC)

const period = 30 * time.Second

// clock is the trusted clock injected through Options.Now; safe for the
// concurrent verifies of the race tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: start} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var totpSettings = sdk.Settings{"issuer": "Example Billing"}

// inProcess is the TOTP provider run in this process.
func inProcess() framework.ProviderSpec {
	return framework.ProviderSpec{Name: "totp", Staff: true, Settings: totpSettings, Impl: totpprovider.New()}
}

// asPlugin is the TOTP provider run as the real plugin binary at path.
func asPlugin(path string) framework.ProviderSpec {
	return framework.ProviderSpec{Name: "totp", Staff: true, Settings: totpSettings, Binary: path}
}

// env is a framework over a real SQLite store in a temporary directory.
type env struct {
	fw    *framework.Framework
	clk   *clock
	store *sqlite.Store
	dir   string // holds the database and nothing else
	db    string // the database file
	key   []byte
}

func newKey(tb testing.TB) []byte {
	tb.Helper()
	key := make([]byte, framework.KeySize)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	return key
}

// openStore opens a SQLite store in a new temporary directory; it is closed
// when the test ends.
func openStore(tb testing.TB) (*sqlite.Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "twofactor.db")
	store, err := sqlite.Create(tb.Context(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	return store, path
}

// newEnv starts a framework with the given providers; it is closed when the
// test ends.
func newEnv(tb testing.TB, specs ...framework.ProviderSpec) *env {
	tb.Helper()
	store, path := openStore(tb)
	e := &env{clk: newClock(), store: store, dir: filepath.Dir(path), db: path, key: newKey(tb)}
	e.fw = startFramework(tb, store, e.key, e.clk, 0, specs...)
	return e
}

func startFramework(tb testing.TB, store framework.Store, key []byte, clk *clock, ttl time.Duration, specs ...framework.ProviderSpec) *framework.Framework {
	tb.Helper()
	fw, err := framework.New(tb.Context(), framework.Options{
		Store: store, EncryptionKey: key, Providers: specs, Now: clk.Now, PendingTTL: ttl,
	})
	if err != nil {
		tb.Fatalf("framework.New: %v", err)
	}
	tb.Cleanup(func() { fw.Close() })
	return fw
}

// secretOf extracts the base32 secret from an enrollment's otpauth URL.
func secretOf(tb testing.TB, d sdk.Display) string {
	tb.Helper()
	key, err := otp.NewKeyFromURL(d.OTPAuthURL)
	if err != nil {
		tb.Fatalf("parse otpauth URL: %v", err)
	}
	if key.Secret() == "" {
		tb.Fatal("otpauth URL has no secret")
	}
	return key.Secret()
}

var codeOpts = totp.ValidateOpts{Period: uint(period / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// codeAt is what an authenticator app with secret shows at t.
func codeAt(tb testing.TB, secret string, t time.Time) string {
	tb.Helper()
	code, err := totp.GenerateCodeCustom(secret, t, codeOpts)
	if err != nil {
		tb.Fatalf("generate code: %v", err)
	}
	return code
}

// wrongCode is a well-formed code that matches no step near t, so it is
// refused whatever the provider's skew.
func wrongCode(tb testing.TB, secret string, t time.Time) string {
	tb.Helper()
	near := map[string]bool{}
	for i := -3; i <= 3; i++ {
		near[codeAt(tb, secret, t.Add(time.Duration(i)*period))] = true
	}
	for n := 0; ; n++ {
		c := fmt.Sprintf("%06d", (123456+n*7919)%1000000)
		if !near[c] {
			return c
		}
	}
}

// begin starts an enrollment and returns its secret.
func (e *env) begin(tb testing.TB, user string) string {
	tb.Helper()
	res, err := e.fw.BeginEnrollment(tb.Context(), framework.EnrollInput{UserID: user, Provider: "totp", Audience: framework.AudienceStaff})
	if err != nil {
		tb.Fatalf("BeginEnrollment(%q): %v", user, err)
	}
	if res.Status != framework.StatusPending {
		tb.Fatalf("BeginEnrollment(%q) status = %q, want pending", user, res.Status)
	}
	return secretOf(tb, res.Display)
}

// confirm confirms a pending enrollment with a code at the current time.
func (e *env) confirm(tb testing.TB, user, code string) framework.ConfirmResult {
	tb.Helper()
	res, err := e.fw.ConfirmEnrollment(tb.Context(), user, "totp", code)
	if err != nil {
		tb.Fatalf("ConfirmEnrollment(%q): %v", user, err)
	}
	return res
}

// enroll begins and confirms an enrollment at the current time and returns
// its secret.
func (e *env) enroll(tb testing.TB, user string) string {
	tb.Helper()
	secret := e.begin(tb, user)
	if res := e.confirm(tb, user, codeAt(tb, secret, e.clk.Now())); res.Status != framework.StatusActive || res.Reason != "" {
		tb.Fatalf("confirm %q = %+v, want active", user, res)
	}
	return secret
}

func (e *env) verify(tb testing.TB, user, code string) framework.VerifyResult {
	tb.Helper()
	res, err := e.fw.Verify(tb.Context(), framework.VerifyInput{UserID: user, Provider: "totp", Audience: framework.AudienceStaff, Code: code})
	if err != nil {
		tb.Fatalf("Verify(%q): %v", user, err)
	}
	return res
}

// wantVerify checks one verify's decision.
func (e *env) wantVerify(tb testing.TB, user, code string, outcome sdk.Outcome, reason sdk.Reason) {
	tb.Helper()
	res := e.verify(tb, user, code)
	if res.Outcome != outcome || res.Reason != reason {
		tb.Fatalf("Verify(%q) = %s/%q (%s), want %s/%q", user, res.Outcome, res.Reason, res.Message, outcome, reason)
	}
}

// wantCode checks that err is a framework error of the given code, both by
// CodeOf and by errors.Is.
func wantCode(tb testing.TB, err error, code framework.Code) {
	tb.Helper()
	if got := framework.CodeOf(err); got != code {
		tb.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	if !isCode(err, code) {
		tb.Fatalf("errors.Is(%v, &Error{Code: %q}) is false", err, code)
	}
}

func isCode(err error, code framework.Code) bool {
	return errors.Is(err, &framework.Error{Code: code})
}

// readDir returns the concatenated contents of every file in dir.
func readDir(tb testing.TB, dir string) (names []string, all []byte) {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	for _, de := range entries {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		names = append(names, de.Name())
		buf.Write(b)
	}
	return names, buf.Bytes()
}
