package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/twofactor/twofactor/framework/config"
)

// cmdRekey re-encrypts everything under the current key, after which
// previous_encryption_keys can be emptied.
func cmdRekey(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("rekey", flag.ContinueOnError)
	every := fs.Int("progress", defaultProgressRows, "print progress every N rows (and at least every 5 seconds); 0: never")
	src, err := configSource(fs, args, nil, stdout)
	if err != nil {
		return err
	}
	if err := wantOperands(fs); err != nil {
		return err
	}
	if *every < 0 {
		return &usageError{"rekey: --progress must be 0 or more"}
	}
	// A weak key under previous_encryption_keys is what rekey retires, so
	// it is accepted here, and only here.
	src.AllowWeakPreviousKeys = true
	cfg, err := config.Load(src)
	if err != nil {
		return err
	}
	fw, closeAll, err := openStoreOnly(ctx, cfg, src.AllowWeakPreviousKeys)
	if err != nil {
		return err
	}
	defer closeAll()
	res, err := fw.RekeyAll(ctx, progressPrinter(stdout, *every, progressInterval, time.Now))
	if err != nil {
		return err
	}
	if res.TrustUnopenable > 0 {
		// They let no one in: the provider asks those devices again. Not a
		// failure, but what the admin should know before removing keys.
		fmt.Fprintf(stdout, "%d remembered device trust token(s) open under no configured key and were left as they are: "+
			"the provider asks those devices again\n", res.TrustUnopenable)
	}
	fmt.Fprintf(stdout, "re-encrypted %d enrollment(s) and %d remembered device trust token(s) under the current encryption_key; "+
		"previous_encryption_keys may now be removed\n", res.Enrollments, res.TrustTokens)
	return nil
}
