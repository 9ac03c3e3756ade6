package postgres

import (
	"time"

	"github.com/twofactor/twofactor/framework"
	"github.com/twofactor/twofactor/framework/store/internal/auditdetails"
)

// auditRow is an audit entry's columns: at, then the text columns in
// auditSQL's order (details last).
type auditRow struct {
	at   time.Time
	text [9]string
}

// auditRowOf refuses an entry whose text the server would refuse
// (CheckText): the refusal is then its decision's, before it joins a
// batch, not the batch's.
func auditRowOf(e framework.AuditEntry) (auditRow, error) {
	if err := e.CheckText(); err != nil {
		return auditRow{}, err
	}
	at, err := timestamp("Time", e.Time)
	if err != nil {
		return auditRow{}, err
	}
	js, err := auditdetails.Encode(e.Details)
	if err != nil {
		return auditRow{}, err
	}
	return auditRow{at: at, text: [9]string{e.Event, e.Actor, e.UserID, e.Provider, string(e.Audience), e.Outcome, e.Reason, e.ClientIP, js}}, nil
}

func (r auditRow) args() []any {
	out := []any{r.at}
	for _, t := range r.text {
		out = append(out, t)
	}
	return out
}

// auditColumns are auditRowsSQL's arguments for rows: one array a column.
func auditColumns(rows []auditRow) []any {
	at := make([]time.Time, len(rows))
	var text [9][]string
	for i, row := range rows {
		at[i] = row.at
		for c, v := range row.text {
			text[c] = append(text[c], v)
		}
	}
	args := []any{at}
	for _, col := range text {
		args = append(args, col)
	}
	return args
}
