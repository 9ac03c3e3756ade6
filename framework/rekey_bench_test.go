package framework_test

import (
	"fmt"
	"testing"

	"github.com/twofactor/twofactor/framework"
)

// rekeyBenchRows is the store BenchmarkRekey re-seals: enough rows for
// forty pages, so the per-page cost, not the start, is what it measures.
const rekeyBenchRows = 20_000

// BenchmarkRekey is the cost of Rekey over rekeyBenchRows enrollments on
// SQLite, every one still sealed under the previous key: each iteration
// imports them under key 1 into a new store (not timed), then times one
// Rekey with key 2 current and key 1 previous. ns/op is one whole run;
// rows/s is what an admin waits on.
func BenchmarkRekey(b *testing.B) {
	old, current := newKey(b), newKey(b)
	state := make([]byte, 64) // about a TOTP state's size; Rekey never parses it
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		store, _ := openStore(b)
		seed := startFramework(b, store, old, newClock(), 0, inProcess())
		for from := 0; from < rekeyBenchRows; from += framework.MaxImportBatch {
			batch := make([]framework.ImportedEnrollment, 0, framework.MaxImportBatch)
			for i := from; i < min(from+framework.MaxImportBatch, rekeyBenchRows); i++ {
				batch = append(batch, framework.ImportedEnrollment{UserID: fmt.Sprintf("user%06d", i), State: state})
			}
			if err := seed.ImportEnrollments(b.Context(), "totp", batch); err != nil {
				b.Fatal(err)
			}
		}
		seed.Close()
		fw, err := framework.New(b.Context(), framework.Options{
			Store: store, EncryptionKey: current, PreviousKeys: [][]byte{old},
			Providers: []framework.ProviderSpec{inProcess()}, Now: newClock().Now,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := fw.Rekey(b.Context())
		b.StopTimer()
		if err != nil || n != rekeyBenchRows {
			b.Fatalf("Rekey = %d, %v; want %d re-sealed", n, err, rekeyBenchRows)
		}
		fw.Close()
		store.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(rekeyBenchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
