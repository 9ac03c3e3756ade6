package host

// Ending a user's lockout, by an admin: `twofactor unlock` and
// POST /v1/users/{user}/unlock (admin scope). Both go through
// framework.Unlock, which audits it as event "unlock".

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
)

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request) {
	if err := s.fw.Unlock(r.Context(), r.PathValue("user")); err != nil {
		s.writeFrameworkError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func cmdUnlock(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("unlock", flag.ContinueOnError)
	cfg, err := loadConfig(fs, args, nil)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: twofactor unlock --config FILE USER")
	}
	fw, closeAll, err := openStoreOnly(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeAll()
	if err := fw.Unlock(ctx, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ended %s's lockout; their factors are unchanged\n", fs.Arg(0))
	return nil
}
