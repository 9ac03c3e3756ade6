package totpfile

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func readAll(t *testing.T, f Format, text string) ([]Row, error) {
	t.Helper()
	var rows []Row
	err := Read(strings.NewReader(text), f, func(r Row) error {
		rows = append(rows, r)
		return nil
	})
	return rows, err
}

func TestReadCSV(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []Row
	}{
		{"positional", "alice," + secret + "\n\nbob, " + secret + ",8,60,SHA256\ncarol," + secret + ",,,\n", []Row{
			{Line: 1, User: "alice", Secret: secret},
			{Line: 3, User: "bob", Secret: secret, Digits: 8, Period: 60, Algorithm: "SHA256"},
			{Line: 4, User: "carol", Secret: secret},
		}},
		{"header in another order", "Secret,Period,User\r\n" + secret + ",45,\"dave, jr\"\r\n", []Row{
			{Line: 2, User: "dave, jr", Secret: secret, Period: 45},
		}},
		{"no final newline", "erin," + secret, []Row{{Line: 1, User: "erin", Secret: secret}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := readAll(t, CSV, tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(rows) != fmt.Sprint(tc.want) {
				t.Errorf("rows = %+v, want %+v", rows, tc.want)
			}
		})
	}
}

func TestReadJSONL(t *testing.T) {
	text := `{"user":"alice","secret":"` + secret + `"}` + "\n\n" +
		`{"user":"bob","secret":"` + secret + `","digits":8,"period":60,"algorithm":"SHA512"}` + "\r\n"
	rows, err := readAll(t, JSONL, text)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{
		{Line: 1, User: "alice", Secret: secret},
		{Line: 3, User: "bob", Secret: secret, Digits: 8, Period: 60, Algorithm: "SHA512"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("rows = %+v, want %+v", rows, want)
	}
}

// TestErrorsNameTheLineNotTheSecret: every refusal names its line, and
// none quotes the secret, whichever field it ended up in.
func TestErrorsNameTheLineNotTheSecret(t *testing.T) {
	ok := "alice," + secret + "\n"
	okJSON := `{"user":"alice","secret":"x"}` + "\n"
	for _, tc := range []struct {
		name   string
		f      Format
		text   string
		line   int
		reason string
	}{
		{"one field", CSV, ok + secret + "\n", 2, "1 fields"},
		{"six fields", CSV, ok + "bob," + secret + ",6,30,SHA1,x\n", 2, "6 fields"},
		{"digits not a number", CSV, ok + "bob,x," + secret + "\n", 2, "digits is not"},
		{"negative period", CSV, ok + "bob,x,6,-30\n", 2, "period is not"},
		{"empty user", CSV, ok + "," + secret + "\n", 2, "user is empty"},
		{"empty secret", CSV, ok + "bob, \n", 2, "secret is empty"},
		{"bare quote", CSV, ok + "bob,ab\"" + secret + "\n", 2, "bare"},
		{"unknown header", CSV, "user," + secret + "\n", 1, "header column 2"},
		{"header without secret", CSV, "user,digits\n", 1, "no secret column"},
		{"row wider than the header", CSV, "user,secret\nbob,x,6\n", 2, "the header has 2"},
		{"JSON syntax", JSONL, okJSON + `{"user":"bob","secret":` + secret + `}` + "\n", 2, "not valid JSON"},
		{"JSON cut short", JSONL, okJSON + `{"user":"bob","secret":"` + secret, 2, "not valid JSON"},
		{"JSON secret a number", JSONL, okJSON + `{"user":"bob","secret":12}`, 2, "secret must be a string"},
		{"JSON digits a string", JSONL, okJSON + `{"user":"bob","secret":"x","digits":"` + secret + `"}`, 2, "digits must be a number"},
		{"JSON unknown field", JSONL, okJSON + `{"user":"bob","secret":"x","seed":"` + secret + `"}`, 2, `unknown field "seed"`},
		{"JSON not an object", JSONL, okJSON + `"` + secret + `"`, 2, "not a JSON object"},
		{"JSON two values", JSONL, okJSON + `{"user":"bob","secret":"x"} {}`, 2, "more than one"},
		{"JSON no user", JSONL, okJSON + `{"secret":"` + secret + `"}`, 2, "user is empty"},
		{"JSON long line", JSONL, okJSON + `{"user":"` + strings.Repeat("a", maxLine) + `"}`, 2, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(t, tc.f, tc.text)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, fmt.Sprintf("line %d: ", tc.line)) || !strings.Contains(msg, tc.reason) {
				t.Errorf("error %q, want line %d and %q", msg, tc.line, tc.reason)
			}
			if strings.Contains(msg, secret[:8]) {
				t.Errorf("error %q quotes the secret", msg)
			}
		})
	}
}

func TestCallbackErrorStops(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Read(strings.NewReader("a,x\nb,x\nc,x\n"), CSV, func(Row) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("err %v after %d rows, want stop after 2", err, n)
	}
}

func TestFormatOf(t *testing.T) {
	for path, want := range map[string]Format{"a.csv": CSV, "a.CSV": CSV, "users.txt": CSV, "a.jsonl": JSONL, "a.ndjson": JSONL, "x/a.JSON": JSONL} {
		if got := FormatOf(path); got != want {
			t.Errorf("FormatOf(%q) = %s, want %s", path, got, want)
		}
	}
}
