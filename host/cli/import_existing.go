package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/internal/totpfile"
)

// maxListedExisting is how many users already enrolled a refused import
// names: enough to see what went wrong (an old export, a second run),
// short enough to read; the rest are counted.
const maxListedExisting = 20

// existingUsers are the users of an import file who already have an
// enrollment in importProvider. As an error, it is the refusal of the
// whole file.
type existingUsers struct {
	n      int
	listed []string // `line N: "user"`, the first maxListedExisting
}

func (e *existingUsers) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d user(s) in the file already have a %s enrollment:", e.n, importProvider)
	for _, l := range e.listed {
		b.WriteString("\n  ")
		b.WriteString(l)
	}
	if more := e.n - len(e.listed); more > 0 {
		fmt.Fprintf(&b, "\n  and %d more", more)
	}
	b.WriteString("\nnothing was imported. Remove those lines, or import the file with --skip-existing " +
		"to import the other users and leave those enrollments as they are")
	return b.String()
}

// findExisting reads the checked file and looks its users up in the
// store, framework.MaxImportBatch at a time, before anything is written:
// a file that would stop part-way on a user already enrolled is refused
// whole instead.
func findExisting(ctx context.Context, fw *framework.Framework, checked io.Reader, f totpfile.Format) (*existingUsers, error) {
	ex := &existingUsers{}
	var users []string
	lineOf := make(map[string]int)
	lookup := func() error {
		found, err := fw.ExistingEnrollments(ctx, importProvider, users)
		if err != nil {
			return fmt.Errorf("looking up which users are already enrolled: %w", err)
		}
		ex.n += len(found)
		for _, u := range found {
			if len(ex.listed) < maxListedExisting {
				ex.listed = append(ex.listed, fmt.Sprintf("line %d: %q", lineOf[u], u))
			}
		}
		users, lineOf = users[:0], make(map[string]int)
		return nil
	}
	_, err := readImport(checked, f, 0, func(r importRow) error {
		users = append(users, r.user)
		lineOf[r.user] = r.line
		if len(users) < framework.MaxImportBatch {
			return nil
		}
		return lookup()
	})
	if err == nil && len(users) > 0 {
		err = lookup()
	}
	if err != nil {
		return nil, err
	}
	return ex, nil
}
