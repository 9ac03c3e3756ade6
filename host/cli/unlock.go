package cli

// Ending a user's lockout, by an admin: `twofactor unlock`, as
// POST /v1/users/{user}/unlock does (host/api). Both go through
// framework.Unlock, which audits it as event "unlock".

import (
	"context"
	"fmt"
	"io"

	"github.com/twofactor/twofactor/framework"
)

func cmdUnlock(ctx context.Context, args []string, stdout io.Writer) error {
	return onStore(ctx, "unlock", args, stdout, func(fw *framework.Framework, op []string) error {
		if err := fw.Unlock(ctx, op[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ended %s's lockout; their factors are unchanged\n", op[0])
		return nil
	})
}
