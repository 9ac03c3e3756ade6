// Package totpfile reads the file `twofactor import` takes: existing TOTP
// secrets, one user a line, as CSV or JSON Lines. cmd/twofactor-load reads
// the same files to compute the codes of imported users.
//
// CSV: user,secret[,digits,period,algorithm], or any order of these
// columns named by a header line (a first line naming any of them). Empty
// optional fields take the defaults.
//
// JSON Lines: one object a line,
//
//	{"user":"alice","secret":"JBSWY3DPEHPK3PXP...","digits":6,"period":30,"algorithm":"SHA1"}
//
// with user and secret required. Blank lines are skipped in both. A JSON
// line, or a CSV record (a quoted field's line breaks included, and the
// blank lines before it), longer than 64 KiB is refused, and stops the
// reading: a real one is under 200 bytes.
//
// Errors name the line and the field, and never quote a value: in a file
// with its columns swapped, any field could hold a secret.
package totpfile

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
)

// Row is one user's secret. Digits and Period are 0 and Algorithm "" when
// the file leaves them out.
type Row struct {
	Line      int
	User      string
	Secret    string
	Digits    int
	Period    int
	Algorithm string
}

// Format is the file's syntax.
type Format string

// Formats.
const (
	CSV   Format = "csv"
	JSONL Format = "jsonl"
)

// FormatOf picks the format from the file name: .jsonl, .ndjson and .json
// are JSON Lines, anything else CSV.
func FormatOf(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson", ".json":
		return JSONL
	}
	return CSV
}

// maxLine bounds one line: a real one is under 200 bytes.
const maxLine = 64 << 10

// Read calls fn with every row of r in order, and stops at the first
// error, fn's included.
func Read(r io.Reader, f Format, fn func(Row) error) error {
	return ReadEach(r, f, fn, func(err error) error { return err })
}

// ReadEach is Read that hands a line it cannot read to bad and goes on to
// the next line when bad returns nil, so that one pass can list every bad
// line. An error after which the next line cannot be found (a CSV quote
// left open, a bad header, a JSON line longer than the limit) stops it
// all the same.
func ReadEach(r io.Reader, f Format, fn func(Row) error, bad func(error) error) error {
	switch f {
	case CSV:
		return readCSV(r, fn, bad)
	case JSONL:
		return readJSONL(r, fn, bad)
	}
	return fmt.Errorf("unknown format %q (csv or jsonl)", f)
}

// columns are the CSV columns in positional order.
var columns = []string{"user", "secret", "digits", "period", "algorithm"}

// csvBuffer is the buffer encoding/csv reads through: what it may hold
// beyond the record it is reading.
const csvBuffer = 64 << 10

// recordLimit hands encoding/csv, which reads a record of any length
// whole (a quoted field runs over any number of lines), at most maxLine
// bytes past the end of the record before plus what its buffer holds.
// Past that it answers io.EOF, so that csv ends the record and still
// names its first line, and notes that it did: the record is longer
// than maxLine, which readCSV then reports, whatever csv made of it.
type recordLimit struct {
	r       io.Reader
	read    int64 // bytes handed to csv
	allow   int64 // bytes csv may have in all
	tripped bool
}

func (l *recordLimit) Read(p []byte) (int, error) {
	if l.read >= l.allow {
		l.tripped = true
		return 0, io.EOF
	}
	if rest := l.allow - l.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

// readCSV reads records of at most maxLine bytes, each counted from the
// end of the record before (blank lines in between count) to its own end,
// its line break included, as readJSONL counts a line.
func readCSV(r io.Reader, fn func(Row) error, bad func(error) error) error {
	lim := &recordLimit{r: r}
	cr := csv.NewReader(bufio.NewReaderSize(lim, csvBuffer))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	index := map[string]int{} // column name → field; positional until a header says otherwise
	for i, c := range columns {
		index[c] = i
	}
	first, width := true, 0 // width: the header's field count; 0 without a header
	end := 0                // the last line of the record before
	for {
		start := cr.InputOffset()
		// csv's buffer holds less than csvBuffer bytes when it asks for
		// more, so it asks past allow only inside a record longer than
		// maxLine.
		lim.allow = start + maxLine + csvBuffer
		rec, err := cr.Read()
		var pe *csv.ParseError
		switch {
		case lim.tripped || err == nil && cr.InputOffset()-start > maxLine:
			line := end + 1 // the record's line, unless blank lines came first
			switch {
			case err == nil:
				line, _ = cr.FieldPos(0)
			case errors.As(err, &pe):
				line = pe.StartLine
			}
			if blank := line - end - 1; blank > 0 {
				return fmt.Errorf("line %d: longer than %d bytes with the %d blank lines before it", line, maxLine, blank)
			}
			return fmt.Errorf("line %d: longer than %d bytes", line, maxLine)
		case err == io.EOF:
			return nil
		case err != nil:
			return csvError(err)
		}
		line, _ := cr.FieldPos(0)
		// A quoted field's line breaks are in its value, as "\n".
		end, _ = cr.FieldPos(len(rec) - 1)
		end += strings.Count(rec[len(rec)-1], "\n")
		if first {
			first = false
			if isHeader(rec) {
				if index, err = header(rec); err != nil {
					return fmt.Errorf("line %d: %w", line, err)
				}
				width = len(rec)
				continue
			}
		}
		row, err := csvRow(rec, line, width, index)
		if err != nil {
			if err := bad(err); err != nil {
				return err
			}
			continue
		}
		if err := fn(row); err != nil {
			return err
		}
	}
}

// csvRow checks one record and makes it a row.
func csvRow(rec []string, line, width int, index map[string]int) (Row, error) {
	switch {
	case width > 0 && len(rec) != width:
		return Row{}, fmt.Errorf("line %d: %d fields; the header has %d", line, len(rec), width)
	case width == 0 && (len(rec) < 2 || len(rec) > len(columns)):
		return Row{}, fmt.Errorf("line %d: %d fields; want user,secret[,digits,period,algorithm]", line, len(rec))
	}
	field := func(name string) string {
		if i, ok := index[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	row := Row{Line: line, User: field("user"), Secret: field("secret"), Algorithm: field("algorithm")}
	var err error
	if row.Digits, err = number(field("digits"), "digits"); err != nil {
		return Row{}, fmt.Errorf("line %d: %w", line, err)
	}
	if row.Period, err = number(field("period"), "period"); err != nil {
		return Row{}, fmt.Errorf("line %d: %w", line, err)
	}
	return row, row.check()
}

// isHeader: a first line naming any column is a header (a secret is never
// a column name; a user called "user" needs a header line).
func isHeader(rec []string) bool {
	for _, f := range rec {
		f = strings.ToLower(strings.TrimSpace(f))
		for _, c := range columns {
			if f == c {
				return true
			}
		}
	}
	return false
}

// header maps the column names of a header line to their fields.
func header(rec []string) (map[string]int, error) {
	index := map[string]int{}
	for i, name := range rec {
		name = strings.ToLower(strings.TrimSpace(name))
		known := false
		for _, c := range columns {
			known = known || c == name
		}
		if !known {
			return nil, fmt.Errorf("header column %d is not one of %s", i+1, strings.Join(columns, ", "))
		}
		if _, dup := index[name]; dup {
			return nil, fmt.Errorf("header names column %s twice", name)
		}
		index[name] = i
	}
	for _, need := range []string{"user", "secret"} {
		if _, ok := index[need]; !ok {
			return nil, fmt.Errorf("header has no %s column", need)
		}
	}
	return index, nil
}

// csvError keeps encoding/csv's position and reason; its messages quote
// no field.
func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %v", pe.Line, pe.Err)
	}
	return err
}

func number(s, name string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s is not a positive whole number", name)
	}
	return n, nil
}

func (r Row) check() error {
	switch {
	case r.User == "":
		return fmt.Errorf("line %d: user is empty", r.Line)
	case r.Secret == "":
		return fmt.Errorf("line %d: secret is empty", r.Line)
	}
	return nil
}

type jsonRow struct {
	User      *string `json:"user"`
	Secret    *string `json:"secret"`
	Digits    int     `json:"digits"`
	Period    int     `json:"period"`
	Algorithm string  `json:"algorithm"`
}

func readJSONL(r io.Reader, fn func(Row) error, bad func(error) error) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull || len(b) > maxLine {
			return fmt.Errorf("line %d: longer than %d bytes", line, maxLine)
		}
		if err != nil && err != io.EOF {
			return err
		}
		if t := bytes.TrimSpace(b); len(t) > 0 {
			row, rerr := jsonlRow(t, line)
			if rerr != nil {
				if rerr := bad(rerr); rerr != nil {
					return rerr
				}
			} else if ferr := fn(row); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// jsonlRow checks one JSON line and makes it a row.
func jsonlRow(t []byte, line int) (Row, error) {
	var j jsonRow
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.DisallowUnknownFields()
	if derr := dec.Decode(&j); derr != nil {
		return Row{}, fmt.Errorf("line %d: %w", line, jsonError(derr))
	}
	if dec.More() {
		return Row{}, fmt.Errorf("line %d: more than one JSON value", line)
	}
	row := Row{Line: line, Digits: j.Digits, Period: j.Period, Algorithm: strings.TrimSpace(j.Algorithm)}
	if j.User != nil {
		row.User = strings.TrimSpace(*j.User)
	}
	if j.Secret != nil {
		row.Secret = strings.TrimSpace(*j.Secret)
	}
	if row.Digits < 0 || row.Period < 0 {
		return Row{}, fmt.Errorf("line %d: digits and period must be positive", line)
	}
	return row, row.check()
}

// jsonError describes a decoding error without the input: encoding/json's
// syntax errors quote the offending character, which may be part of a
// secret.
func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("not valid JSON (at byte %d)", se.Offset)
	case errors.As(err, &te) && te.Field == "":
		return errors.New("not a JSON object")
	case errors.As(err, &te):
		want := "string"
		if te.Type.Kind() == reflect.Int {
			want = "number"
		}
		return fmt.Errorf("field %s must be a %s", te.Field, want)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("unknown field %s (want user, secret, digits, period, algorithm)", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not valid JSON (cut short)")
	}
	return errors.New("not a JSON object")
}
