package totp

import (
	"encoding/base32"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/sdk"
)

// TestImportStateVerifies imports secrets written the ways other systems
// export them and checks that the provider then accepts the codes an app
// with that secret shows, once.
func TestImportStateVerifies(t *testing.T) {
	p := configured(t, nil)
	seed20 := []byte(rfcSeedSHA1)
	b32seed := base32.StdEncoding.EncodeToString(seed20) // 32 characters, no padding
	spaced := strings.ToLower(b32seed[:4] + " " + b32seed[4:8] + " " + b32seed[8:])
	seed16 := []byte("0123456789abcdef")
	padded := base32.StdEncoding.EncodeToString(seed16) // 16 bytes: "=" padding
	for _, tc := range []struct {
		name           string
		secret, alg    string
		digits, period int
		key            []byte
		wantAlg        string
		wantDigits     int
		wantPeriod     int64
	}{
		{"defaults", b32seed, "", 0, 0, seed20, "SHA1", 6, 30},
		{"lower case with spaces", spaced, "sha1", 6, 30, seed20, "SHA1", 6, 30},
		{"padded 128-bit secret", padded, "SHA256", 8, 60, seed16, "SHA256", 8, 60},
		{"SHA512", base32.StdEncoding.EncodeToString([]byte(rfcSeedSHA512)), "SHA512", 8, 30, []byte(rfcSeedSHA512), "SHA512", 8, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := ImportState(tc.secret, tc.alg, tc.digits, tc.period)
			if err != nil {
				t.Fatalf("ImportState: %v", err)
			}
			e, err := parseState(st)
			if err != nil {
				t.Fatalf("parseState: %v", err)
			}
			if string(e.secret) != string(tc.key) || e.algName != tc.wantAlg || e.digits != tc.wantDigits || e.period != tc.wantPeriod || e.lastStep != 0 {
				t.Fatalf("state = %+v, want key %q %s %d digits %d s, last_step 0", e, tc.key, tc.wantAlg, tc.wantDigits, tc.wantPeriod)
			}
			now := int64(1_900_000_000)
			code := codeAt(t, tc.key, tc.wantAlg, tc.wantDigits, now/tc.wantPeriod)
			r := verify(t, p, st, code, now)
			wantOutcome(t, r, sdk.Allow, "")
			wantOutcome(t, verify(t, p, r.State, code, now), sdk.Deny, sdk.ReasonReplayed)
		})
	}
}

func TestImportStateRefuses(t *testing.T) {
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // rfcSeedSHA1
	short := base32.StdEncoding.EncodeToString([]byte("0123456789"))
	for _, tc := range []struct {
		name           string
		secret, alg    string
		digits, period int
		want           string
	}{
		{"empty secret", "  ", "", 0, 0, "secret is empty"},
		{"not base32", secret[:30] + "18", "", 0, 0, "not base32"},
		{"80-bit secret", short, "", 0, 0, "10 bytes (80 bits)"},
		{"too long", strings.Repeat(secret, 4), "", 0, 0, "at most 64"},
		{"MD5", secret, "MD5", 0, 0, "algorithm is not"},
		{"secret in the algorithm column", secret, secret, 0, 0, "algorithm is not"},
		{"7 digits", secret, "", 7, 0, "digits is not 6 or 8"},
		{"period 10", secret, "", 0, 10, "period is outside 15 to 300 seconds"},
		{"period 301", secret, "", 0, 301, "period is outside 15 to 300 seconds"},
		// A secret of base32 digits only, in the digits or period column of a
		// file with its columns swapped (fuzz find FuzzRead/db2cde4d3a4719b1).
		{"digit-only secret as digits", secret, "", 2222222222, 0, "digits is not 6 or 8"},
		{"digit-only secret as period", secret, "", 0, 2222222222, "period is outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := ImportState(tc.secret, tc.alg, tc.digits, tc.period)
			if err == nil {
				t.Fatalf("ImportState accepted it: %s", st)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			for _, s := range []string{secret, secret[:16], short, strings.TrimRight(short, "="), "2222222222"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q quotes the secret", err)
				}
			}
		})
	}
}

// TestImportStateParses: every combination of parameters ImportState
// accepts gives a state parseState accepts with the same values.
func TestImportStateParses(t *testing.T) {
	for _, alg := range []string{"SHA1", "sha256", "SHA512"} {
		for _, digits := range []int{6, 8} {
			for _, period := range []int{minPeriod, 30, 60, maxPeriod} {
				for _, n := range []int{minSecretBytes, 20, 33, maxSecretBytes} {
					key := make([]byte, n)
					for i := range key {
						key[i] = byte(i*7 + n)
					}
					st, err := ImportState(base32.StdEncoding.EncodeToString(key), alg, digits, period)
					if err != nil {
						t.Fatalf("%s %d %d %d: %v", alg, digits, period, n, err)
					}
					e, err := parseState(st)
					if err != nil {
						t.Fatalf("%s %d %d %d: parseState: %v", alg, digits, period, n, err)
					}
					if string(e.secret) != string(key) || e.algName != strings.ToUpper(alg) || e.digits != digits || e.period != int64(period) {
						t.Fatalf("%s %d %d %d: parsed %+v", alg, digits, period, n, e)
					}
				}
			}
		}
	}
}
