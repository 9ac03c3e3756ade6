package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/config"
	"github.com/twofactor/twofactor/internal/totpfile"
	"github.com/twofactor/twofactor/providers/totp"
)

// importProvider is the provider imported secrets become: the built-in
// TOTP provider, whose state format providers/totp.ImportState writes.
const importProvider = "totp"

// defaultImportBatch is the rows per transaction: large enough that the
// commit is a small share of a batch, small enough that a running host's
// verifies wait for one batch only briefly.
const defaultImportBatch = 5000

// cmdImport brings existing TOTP secrets from another system (a built-in
// TOTP of a billing panel, say) into the store as confirmed TOTP
// enrollments, so users keep their authenticator app entry.
//
// It reads the file once, to check every line (a bad line is reported,
// with its number, before anything is written), copying what it reads
// aside (checkedCopy); then it writes that copy in batches of one
// transaction each, so that what is written is what was checked even if
// the file changes meanwhile. Before writing, it looks every user up in
// the store (findExisting): a file with users who already have a TOTP
// enrollment is refused, naming them, with nothing written, unless
// --skip-existing says to leave those users as they are and import the
// others, which is also how an interrupted import is finished. A user
// enrolled between that look-up and the write still fails their batch
// whole (the store's insert is all or nothing): the batches before it
// stay imported, and the message says to run the import again with
// --skip-existing.
func cmdImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	format := fs.String("format", "", "csv or jsonl (default: from the file name; .jsonl/.ndjson/.json are JSON Lines)")
	batchSize := fs.Int("batch", defaultImportBatch, fmt.Sprintf("users per transaction (at most %d)", framework.MaxImportBatch))
	dryRun := fs.Bool("dry-run", false, "check the file, and which of its users are already enrolled, and write nothing")
	skipExisting := fs.Bool("skip-existing", false, "leave users who already have a "+importProvider+" enrollment as they are (never overwritten; "+
		"each skip counted and audited) and import the others: to finish an interrupted or overlapping import")
	cfg, err := loadConfig(fs, args, nil, stdout)
	if err != nil {
		return err
	}
	if err := wantOperands(fs); err != nil {
		return err
	}
	if *batchSize < 1 || *batchSize > framework.MaxImportBatch {
		return fmt.Errorf("--batch must be 1 to %d", framework.MaxImportBatch)
	}
	path := fs.Arg(0)
	f := totpfile.FormatOf(path)
	if *format != "" {
		f = totpfile.Format(*format)
	}
	if !totpEnabled(cfg) {
		fmt.Fprintf(stderr, "twofactor: warning: providers.%s is not enabled in the config: imported users cannot verify until it is\n", importProvider)
	}

	began := time.Now()
	checked, err := checkedCopy(path)
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was imported", path, err)
	}
	defer checked.close()
	n, err := readImport(checked.tee(), f, maxBadLines, func(importRow) error { return nil })
	if err == nil {
		err = checked.done()
	}
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was imported", path, err)
	}
	fmt.Fprintf(stdout, "checked %d users in %v\n", n, time.Since(began).Round(time.Millisecond))
	if n == 0 {
		return nil
	}

	fw, closeAll, err := openStoreOnly(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer closeAll()
	if err := checked.rewind(); err != nil {
		return fmt.Errorf("%s: %w; nothing was imported", path, err)
	}
	existing, err := findExisting(ctx, fw, checked.file, f)
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was imported", path, err)
	}
	if existing.n > 0 {
		if !*skipExisting {
			return fmt.Errorf("%s: %w", path, existing)
		}
		fmt.Fprintf(stdout, "%d of %d users already have a %s enrollment: they will be skipped\n", existing.n, n, importProvider)
	}
	if *dryRun {
		return nil
	}
	if err := checked.rewind(); err != nil {
		return fmt.Errorf("%s: %w; nothing was imported", path, err)
	}
	wrote := time.Now()
	imp := &importer{fw: fw, size: *batchSize, stdout: stdout, total: n, skip: *skipExisting}
	if err := imp.run(ctx, checked.file, f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	d := time.Since(wrote)
	fmt.Fprintf(stdout, "imported %d users into %s in %v (%.0f/s)\n", imp.done, importProvider, d.Round(time.Millisecond), float64(imp.done)/d.Seconds())
	if *skipExisting {
		fmt.Fprintf(stdout, "skipped %d user(s) who already have a %s enrollment, left as they were (audit: event %s, outcome skipped)\n",
			imp.skipped, importProvider, framework.EventImport)
	}
	return nil
}

func totpEnabled(cfg *config.Config) bool {
	for _, p := range cfg.Providers {
		if p.Name == importProvider {
			return p.Enabled
		}
	}
	return false
}

// importRow is one checked line: its user and the provider state built
// from its secret.
type importRow struct {
	line  int
	user  string
	state []byte
}

// maxBadLines is how many bad lines the check lists before it stops:
// enough to fix a file in one go, short enough to read.
const maxBadLines = 100

// badLinesError lists the bad lines of a file.
type badLinesError struct {
	lines []error
	more  bool // the check stopped at maxBadLines
}

func (e *badLinesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d bad line(s)", len(e.lines))
	if e.more {
		fmt.Fprintf(&b, " (the first %d; the check stopped there)", maxBadLines)
	}
	for _, l := range e.lines {
		b.WriteString("\n  ")
		b.WriteString(l.Error())
	}
	return b.String()
}

// readImport reads and checks every line of the file, calling fn with
// each good one, and returns how many there were. A user appearing twice
// is an error naming both lines. With maxBad > 0, a bad line is noted and
// the reading goes on, so that one pass lists up to maxBad of them (a
// *badLinesError); with 0, the first bad line stops it. Errors never quote
// a secret.
func readImport(file io.Reader, f totpfile.Format, maxBad int, fn func(importRow) error) (int, error) {
	var bad badLinesError
	errStop := errors.New("too many bad lines")
	note := func(err error) error {
		if maxBad == 0 {
			return err
		}
		if len(bad.lines) == maxBad {
			bad.more = true
			return errStop
		}
		bad.lines = append(bad.lines, err)
		return nil
	}
	firstLine := map[string]int{}
	n := 0
	err := totpfile.ReadEach(file, f, func(r totpfile.Row) error {
		// The state first: if the columns are swapped, the user field may
		// hold the secret, and the user is quoted below.
		state, err := totp.ImportState(r.Secret, r.Algorithm, r.Digits, r.Period)
		if err != nil {
			return note(fmt.Errorf("line %d: %w", r.Line, err))
		}
		if err := framework.ValidateUserID(r.User); err != nil {
			return note(fmt.Errorf("line %d: %w", r.Line, err))
		}
		if first, dup := firstLine[r.User]; dup {
			return note(fmt.Errorf("line %d: user %q appears again (first on line %d)", r.Line, r.User, first))
		}
		firstLine[r.User] = r.Line
		n++
		return fn(importRow{line: r.Line, user: r.User, state: state})
	}, note)
	switch {
	case err != nil && !errors.Is(err, errStop):
		if len(bad.lines) > 0 { // a line the reader cannot get past, after others
			bad.lines = append(bad.lines, err)
			return n, &bad
		}
		return n, err
	case len(bad.lines) > 0:
		return n, &bad
	}
	return n, nil
}

// importer writes checked rows in batches, while the next batch is read:
// reading and building states takes about as long as sealing and writing
// them.
type importer struct {
	fw          *framework.Framework
	size        int
	stdout      io.Writer
	skip        bool // ImportOptions.SkipExisting
	done, total int
	skipped     int
	nextReport  int
}

// batch is up to importer.size rows and their line numbers.
type batch struct {
	rows  []framework.ImportedEnrollment
	lines []int
}

func (im *importer) run(ctx context.Context, checked io.Reader, f totpfile.Format) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan batch, 2)
	var readErr error // set before ch is closed
	go func() {
		defer close(ch)
		var b batch
		send := func() error {
			select {
			case ch <- b:
				b = batch{}
				return nil
			case <-rctx.Done():
				return rctx.Err()
			}
		}
		_, readErr = readImport(checked, f, 0, func(r importRow) error {
			b.rows = append(b.rows, framework.ImportedEnrollment{UserID: r.user, State: r.state})
			b.lines = append(b.lines, r.line)
			if len(b.rows) < im.size {
				return nil
			}
			return send()
		})
		if readErr == nil && len(b.rows) > 0 {
			readErr = send()
		}
	}()
	for b := range ch {
		if err := im.write(ctx, b); err != nil {
			cancel()
			for range ch { // let the reader finish
			}
			return err
		}
	}
	return readErr
}

func (im *importer) write(ctx context.Context, b batch) error {
	res, err := im.fw.ImportEnrollmentsWith(ctx, importProvider, b.rows, framework.ImportOptions{SkipExisting: im.skip})
	if err != nil {
		return im.failed(b, err)
	}
	im.done += res.Imported
	im.skipped += len(res.Skipped)
	if seen := im.done + im.skipped; seen >= im.nextReport && seen < im.total {
		if im.skipped > 0 {
			fmt.Fprintf(im.stdout, "imported %d and skipped %d of %d users\n", im.done, im.skipped, im.total)
		} else {
			fmt.Fprintf(im.stdout, "imported %d of %d users\n", im.done, im.total)
		}
		im.nextReport = seen + max(im.total/10, im.size)
	}
	return nil
}

// failed explains a refused batch: which line, what was written before.
func (im *importer) failed(b batch, err error) error {
	from, to := b.lines[0], b.lines[len(b.lines)-1]
	var ee *framework.ExistsError
	if errors.As(err, &ee) {
		for i, e := range b.rows {
			if e.UserID == ee.UserID {
				err = fmt.Errorf("line %d: user %q already has a %s enrollment, made since the check", b.lines[i], ee.UserID, importProvider)
				break
			}
		}
	}
	return fmt.Errorf("%w. Lines %d to %d were not imported; the %d users before line %d were (and %d skipped). "+
		"To finish, import the same file again with --skip-existing: the users already imported are skipped, never overwritten",
		err, from, to, im.done, from, im.skipped)
}
