package totpfile

import (
	"errors"
	"fmt"
	"io"
	"slices"
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
		// A CSV record is bounded as a JSON line is, however csv would
		// end it: the secret's field one byte too long, a field far too
		// long (its quote never closed, or followed by more lines),
		// a quoted field over many short lines, a header.
		{"CSV record one byte too long", CSV, ok + "bob," + long(maxLine-len("bob,\n")+1) + "\n", 2, "longer than 65536 bytes"},
		{"CSV long line", CSV, ok + "bob," + long(4*maxLine) + "\ncarol,x\n", 2, "longer than 65536 bytes"},
		{"CSV long line at the end", CSV, ok + "bob," + long(4*maxLine), 2, "longer than 65536 bytes"},
		{"CSV long quoted field", CSV, ok + "bob,\"" + long(4*maxLine) + "\"\n", 2, "longer than 65536 bytes"},
		{"CSV long quote left open", CSV, ok + "bob,\"" + long(4*maxLine), 2, "longer than 65536 bytes"},
		{"CSV quoted field over many lines", CSV, ok + "\n\nbob,\"" + strings.Repeat(secret+"\n", 1<<13) + "\"\n", 4, "longer than 65536 bytes"},
		{"CSV quoted field over many lines after one", CSV, "alice,\"" + secret + "\n\"\nbob,\"" + strings.Repeat(secret+"\r\n", 1<<13) + "\"\n", 3, "longer than 65536 bytes"},
		{"CSV long header", CSV, "user,secret," + strings.Repeat(" ", maxLine) + "digits\n", 1, "longer than 65536 bytes"},
		{"CSV long bare quote", CSV, ok + "bob,a\"" + long(4*maxLine) + "\n", 2, "longer than 65536 bytes"},
		// Blank lines count toward the record after them (csv skips them
		// unseen), and the error says so.
		{"CSV blank lines then a record", CSV, ok + strings.Repeat("\n", maxLine) + "bob,x\n", 2 + maxLine, "longer than 65536 bytes with the 65536 blank lines before it"},
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

// long is n bytes of the secret, repeated.
func long(n int) string {
	return strings.Repeat(secret, n/len(secret)+1)[:n]
}

// TestCSVRecordAtTheLimit: a record of maxLine bytes, its line break
// included, is read, on one line or over many (a quoted field), with the
// records around it; a byte more is refused (TestErrorsNameTheLineNotTheSecret).
func TestCSVRecordAtTheLimit(t *testing.T) {
	lines := strings.Repeat("b\n", maxLine/2-3) + "b" // a user over 32,765 lines
	for _, tc := range []struct{ name, record, user string }{
		{"one line", "bob," + long(maxLine-len("bob,\n")) + "\n", "bob"},
		{"quoted over lines", "\"" + lines + "\",x\n", lines},
		{"CRLF", "bob," + long(maxLine-len("bob,\r\n")) + "\r\n", "bob"},
		{"blank lines before", "\n\n\r\nbob," + long(maxLine-len("\n\n\r\nbob,\n")) + "\n", "bob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.record) != maxLine {
				t.Fatalf("the record is %d bytes", len(tc.record))
			}
			for _, text := range []string{
				tc.record + "carol," + secret + "\n",
				"alice," + secret + "\n" + strings.Repeat(tc.record, 3),
			} {
				rows, err := readAll(t, CSV, text)
				if err != nil {
					t.Fatal(err)
				}
				var users []string
				for _, r := range rows {
					users = append(users, strings.TrimSpace(r.User))
				}
				if !slices.Contains(users, strings.TrimSpace(tc.user)) || len(rows) < 2 {
					t.Errorf("rows %d, users %.40q", len(rows), users)
				}
			}
		})
	}
}

// endless is a CSV file whose second record does not end (until 4 MiB):
// a quoted field of short lines or one line. It counts what was read
// from it.
type endless struct {
	head, body string
	read       int
}

func (e *endless) Read(p []byte) (int, error) {
	if e.read > 4<<20 { // enough: a reader without a bound fails, not hangs
		return 0, io.EOF
	}
	var n int
	if e.read < len(e.head) {
		n = copy(p, e.head[e.read:])
	} else {
		n = copy(p, e.body[(e.read-len(e.head))%len(e.body):])
	}
	e.read += n
	return n, nil
}

// TestCSVReadsABoundedRecord: a record that never ends is refused after
// reading at most maxLine bytes of it, and what csv may buffer, not read
// whole.
func TestCSVReadsABoundedRecord(t *testing.T) {
	for _, body := range []string{secret + "\n", secret, secret + "\"\"\r\n"} {
		src := &endless{head: "alice," + secret + "\nbob,\"", body: body}
		err := Read(src, CSV, func(Row) error { return nil })
		if err == nil || err.Error() != "line 2: longer than 65536 bytes" {
			t.Errorf("%q...: %v", body, err)
		}
		if src.read > len(src.head)+maxLine+csvBuffer {
			t.Errorf("%q...: read %d bytes of a record before refusing it at %d", body, src.read, maxLine)
		}
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
