package host

// Ending a user's lockout, by an admin: `twofactor unlock` and
// POST /v1/users/{user}/unlock (admin scope). Both go through
// framework.Unlock, which audits it as event "unlock".

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/twofactor/twofactor/framework"
)

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request) {
	if err := s.fw.Unlock(r.Context(), r.PathValue("user")); err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func cmdUnlock(ctx context.Context, args []string, stdout io.Writer) error {
	return onStore(ctx, "unlock", args, stdout, func(fw *framework.Framework, op []string) error {
		if err := fw.Unlock(ctx, op[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ended %s's lockout; their factors are unchanged\n", op[0])
		return nil
	})
}
