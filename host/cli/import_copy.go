package cli

import (
	"fmt"
	"io"
	"os"
)

// importCopy is the import file as the check read it, kept aside for the
// write: reading the file again would write whatever it holds by then (an
// export still running, a second copy landing over it), past the check,
// and stop part-way at a line the check never saw.
//
// The copy holds the secrets in the clear, so it is a temporary file of
// mode 0600 removed from its folder as soon as it is made: nothing can
// open it by name, and its space is freed when the process ends, however
// it ends (a SIGKILL leaves no copy of the secrets behind).
type importCopy struct {
	src  *os.File
	file *os.File // the copy; at its start once done returned
	werr error    // the first failed write to the copy
}

// checkedCopy opens the file at path and an unnamed copy to fill.
func checkedCopy(path string) (*importCopy, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp("", "twofactor-import-*")
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("a private copy of the file to import: %w", err)
	}
	if err := os.Remove(tmp.Name()); err != nil {
		tmp.Close()
		src.Close()
		return nil, fmt.Errorf("a private copy of the file to import: %w", err)
	}
	return &importCopy{src: src, file: tmp}, nil
}

// tee is the file to check: every byte read from it is also written to
// the copy.
func (c *importCopy) tee() io.Reader { return io.TeeReader(c.src, (*copyWriter)(c)) }

// copyWriter writes to the copy and keeps the first error for done,
// rather than failing the read with a message about the wrong file.
type copyWriter importCopy

func (w *copyWriter) Write(p []byte) (int, error) {
	if w.werr == nil {
		_, w.werr = w.file.Write(p)
	}
	return len(p), nil
}

// done ends the check: it reports a failed copy (a full temporary
// folder) and rewinds the copy for the write.
func (c *importCopy) done() error {
	if c.werr != nil {
		return fmt.Errorf("a private copy of the file to import: %w", c.werr)
	}
	return c.rewind()
}

// rewind goes back to the copy's start, for another pass over it.
func (c *importCopy) rewind() error {
	if _, err := c.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("a private copy of the file to import: %w", err)
	}
	return nil
}

// close closes both files; the copy, unnamed, is gone with it.
func (c *importCopy) close() {
	c.src.Close()
	c.file.Close()
}
