package ui

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/sdk"
)

// The admin page: providers, health, versions, audiences, clock offset.

type providerRow struct {
	Name        string
	Version     string
	Audiences   []string
	Health      string
	HealthClass string
	Running     bool
	ClockOffset string
	ClockClass  string
	Restarts    int
	Notes       []string
}

func (u *UI) adminPage(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.open(w, r, PageAdmin, kindLink)
	if !ok {
		return
	}
	v := u.base(c, tok)
	v.Title, v.Wide, v.AdminIssuer = "Providers", true, c.Issuer
	v.CheckedAt = u.now().UTC().Format("2 Jan 2006 15:04:05 MST")
	healthy := 0
	for _, p := range u.fw.Providers() {
		row := providerRow{Name: p.Name, Version: p.Version, Health: string(p.Health), Running: p.Running, Restarts: p.Restarts, ClockOffset: "—"}
		if p.Staff {
			row.Audiences = append(row.Audiences, "staff")
		}
		if p.Clients {
			row.Audiences = append(row.Audiences, "client")
		}
		switch {
		case !p.Running:
			row.Health, row.HealthClass = "not running", "bad"
		case p.Health == sdk.Healthy:
			row.HealthClass = "good"
			healthy++
		case p.Health == sdk.Degraded:
			row.HealthClass = "warn"
		case p.Health == "":
			row.Health, row.HealthClass = "unknown", "bad"
		default:
			row.HealthClass = "bad"
		}
		for _, d := range p.Diagnostics {
			sev := framework.SeverityOf(d)
			if d.Code == "clock_offset" {
				row.ClockOffset, row.ClockClass = d.Value, "good"
				if sev != sdk.SeverityInfo {
					row.ClockClass = "warn"
				}
			}
			if sev == sdk.SeverityInfo {
				continue // for the record: the admin page shows what needs doing
			}
			note := d.Message
			if d.Fix != "" {
				note += " Fix: " + d.Fix
			}
			row.Notes = append(row.Notes, note)
		}
		if p.LastError != "" {
			row.Notes = append(row.Notes, "Last error: "+p.LastError)
		}
		v.ProviderRows = append(v.ProviderRows, row)
	}
	v.Lead = fmt.Sprintf("%d of %d providers healthy.", healthy, len(v.ProviderRows))
	u.render(w, http.StatusOK, "admin", v)
}

func (u *UI) adminRefresh(w http.ResponseWriter, r *http.Request) {
	c, tok, ok := u.submit(w, r, PageAdmin, kindLink)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(u.ctx(r, c), 30*time.Second)
	defer cancel()
	u.fw.Refresh(ctx)
	http.Redirect(w, r, "/ui/admin?t="+tok, http.StatusSeeOther)
}
