package totpfile

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofactor/twofactor/providers/totp"
	"github.com/twofactor/twofactor/sdk"
)

// secretLike finds the values an error must never quote: runs of base32
// long enough to be (part of) a secret.
var secretLike = regexp.MustCompile(`[A-Za-z2-7=]{10,}`)

// values are the field values in text, read leniently: every CSV field,
// or every string of a JSON line (keys are names, not values).
func values(text []byte, jsonl bool) []string {
	var out []string
	if jsonl {
		for _, line := range bytes.Split(text, []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil {
				for _, v := range m {
					if s, ok := v.(string); ok {
						out = append(out, s)
					}
				}
			}
		}
		return out
	}
	cr := csv.NewReader(bytes.NewReader(text))
	cr.FieldsPerRecord, cr.LazyQuotes = -1, true
	for {
		rec, err := cr.Read()
		if err != nil {
			return out
		}
		out = append(out, rec...)
	}
}

// FuzzRead feeds arbitrary files to the reader of `twofactor import`, as
// CSV or JSON Lines, and every row it returns to totp.ImportState. Nothing
// panics; rows come in line order with a user and a secret; every error
// names its line and quotes no value; every state ImportState builds is
// one the TOTP provider reads.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"alice,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n\nbob, gezd gnbv gy3t qojq gezd gnbv gy3t qojq,8,60,sha256\ncarol,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,,,\n",
		"Secret,Period,User\r\nGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,45,\"dave, jr\"\r\n",
		"user,secret,user\nGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,x,y\n",
		"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,alice\n",
		"alice,GEZDGNBVGY3TQOJQ\n",
		"alice,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ====,6,30,MD5\n",
		"alice,\"GEZDGNBVGY3TQOJQ\nGEZDGNBVGY3TQOJQ\"\n",
		"alice,\"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n",
		"alice,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,-6\n",
		`{"user":"alice","secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"}` + "\n" +
			`{"user":"bob","secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","digits":8,"period":60,"algorithm":"SHA512"}` + "\r\n",
		`{"user":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","secret":7}`,
		`{"user":"alice","secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ","MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U":1}`,
		`{"user":"alice","secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"} {}`,
		`{"user":"alice","secret":"GEZDGNBVGY3TQOJQ` + "\x00" + `"}`,
		`["GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"]`,
		"", "\n\n", "\xff\xfe",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	p := totp.New()
	if err := p.Configure(context.Background(), sdk.Settings{"issuer": "Fuzz"}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text []byte, jsonl bool) {
		format := CSV
		if jsonl {
			format = JSONL
		}
		vals := values(text, jsonl)
		quotes := func(msg string) bool {
			for _, v := range vals {
				for _, s := range secretLike.FindAllString(v, -1) {
					if strings.Contains(msg, s) {
						return true
					}
				}
			}
			return false
		}
		last := 0
		err := Read(bytes.NewReader(text), format, func(r Row) error {
			if r.Line <= last || r.User == "" || r.Secret == "" || r.Digits < 0 || r.Period < 0 ||
				r.User != strings.TrimSpace(r.User) || r.Secret != strings.TrimSpace(r.Secret) {
				t.Fatalf("row %+v after line %d", r, last)
			}
			last = r.Line
			state, err := totp.ImportState(r.Secret, r.Algorithm, r.Digits, r.Period)
			if err != nil {
				if quotes(err.Error()) {
					t.Fatalf("ImportState's error quotes a value: %v", err)
				}
				return nil
			}
			v, err := p.Verify(context.Background(), sdk.VerifyRequest{State: state, Code: "000000", Now: time.Unix(1_800_000_000, 0)})
			if err != nil || v.Outcome == sdk.Allow && v.State == nil {
				t.Fatalf("the state imported from line %d is refused: %+v, %v", r.Line, v, err)
			}
			return nil
		})
		if err == nil {
			return
		}
		if !regexp.MustCompile(`^line \d+: `).MatchString(err.Error()) {
			t.Fatalf("an error that names no line: %v", err)
		}
		if quotes(err.Error()) {
			t.Fatalf("the error quotes a value: %v", err)
		}
	})
}
