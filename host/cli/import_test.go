package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/twofactor/twofactor/internal/totpfile"
)

// TestImportRefusesLongCSVRecord: `twofactor import` reads a CSV record
// of at most 64 KiB, as it reads a JSON line: a hostile export with one
// huge field (64 MiB here, in quotes so that it spans many short lines)
// is refused at its line, without the field in the message, before it is
// read whole, both when the file is checked and when it is written
// (maxBad 0).
func TestImportRefusesLongCSVRecord(t *testing.T) {
	const size = 64 << 20
	path := filepath.Join(t.TempDir(), "users.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(f, "alice,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\nbob,\"")
	chunk := strings.Repeat("GEZDGNBVGY3TQOJQ\n", 1<<12)
	for written := 0; written < size; written += len(chunk) {
		f.WriteString(chunk)
	}
	fmt.Fprint(f, "\"\n")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	for _, maxBad := range []int{maxBadLines, 0} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		file, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = readImport(file, totpfile.CSV, maxBad, func(importRow) error { return nil })
		file.Close()
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		if err == nil || !strings.Contains(err.Error(), "line 2: longer than 65536 bytes") || strings.Contains(err.Error(), "GEZDGNBV") {
			t.Errorf("maxBad %d: err = %.200v, want line 2 longer than 65536 bytes", maxBad, err)
		}
		// Reading the field whole took 504 MiB; refusing it at 64 KiB
		// takes well under one. A quarter of the field's size leaves room
		// for whatever else the process allocates meanwhile.
		if alloc > size/4 {
			t.Errorf("maxBad %d: %d MiB allocated refusing a field of %d MiB", maxBad, alloc>>20, size>>20)
		}
		t.Logf("maxBad %d: %d KiB allocated", maxBad, alloc>>10)
	}
}
