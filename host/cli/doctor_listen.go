package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// listenProbeTimeout bounds the doctor's question to whatever holds the
// listen port.
const listenProbeTimeout = 2 * time.Second

// listenPort checks that serve could open the listen address: free, or
// held by a twofactor host that answers /healthz (the one the doctor is
// run beside, most likely: a warning, since a second serve would fail).
func (d *doctor) listenPort(ctx context.Context, addr string) {
	const elsewhere = "listen elsewhere: --listen ADDR, TWOFACTOR_LISTEN=ADDR or listen: in the config"
	const fix = "stop what holds it, or " + elsewhere
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		d.add("listen", CheckOK, addr+" is free for serve", "")
		return
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		d.add("listen", CheckFail, fmt.Sprintf("serve could not listen on %s: %v", addr, err),
			"use an address of this machine and a port this user may open (1024 and up unless privileged); "+elsewhere)
		return
	}
	if twofactorServes(ctx, addr) {
		d.add("listen", CheckWarn, addr+" is in use by a running twofactor host (healthz answers): a second serve there would fail", fix)
		return
	}
	d.add("listen", CheckFail, addr+" is in use by another program: serve would fail to start", fix)
}

// twofactorServes reports whether a twofactor host answers GET /healthz
// at addr.
func twofactorServes(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, listenProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return false
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var body struct {
		Status string `json:"status"`
	}
	err = json.NewDecoder(io.LimitReader(res.Body, 1024)).Decode(&body)
	return err == nil && res.StatusCode == http.StatusOK && body.Status == "ok"
}
