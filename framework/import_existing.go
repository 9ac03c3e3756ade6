package framework

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// ExistingEnrollments returns those of users that already have an
// enrollment (pending or active) in provider, in users' order: what an
// import of them would clash with. An import checks its whole file with it
// before writing anything. It writes nothing.
func (f *Framework) ExistingEnrollments(ctx context.Context, provider string, users []string) ([]string, error) {
	if err := checkImportProvider(provider); err != nil {
		return nil, err
	}
	if len(users) > MaxImportBatch {
		return nil, errorf(CodeInvalidRequest, nil, "a look-up of %d users is over the limit of %d", len(users), MaxImportBatch)
	}
	seen := make(map[string]struct{}, len(users))
	for i, u := range users {
		if err := ValidateUserID(u); err != nil {
			return nil, fmt.Errorf("existing enrollments: user %d: %w", i, err)
		}
		if _, dup := seen[u]; dup {
			return nil, errorf(CodeInvalidRequest, nil, "existing enrollments: user %q appears twice", u)
		}
		seen[u] = struct{}{}
	}
	if len(users) == 0 {
		return []string{}, nil
	}
	bulk, err := f.bulkWriter()
	if err != nil {
		return nil, err
	}
	found, err := bulk.ExistingEnrollments(ctx, provider, users)
	if err != nil {
		return nil, errorf(CodeInternal, pastDeadline(ctx, err), "look up existing enrollments")
	}
	return found, nil
}

// insertSkipping inserts the rows whose user has no enrollment in
// provider. The look-up and the insert are two steps: a user enrolled in
// between fails the insert (all or nothing, never an overwrite), and the
// rows are looked up again.
func (f *Framework) insertSkipping(ctx context.Context, bulk BulkEnrollmentWriter, provider string, rows []Enrollment) (ImportResult, error) {
	users := make([]string, len(rows))
	for i, e := range rows {
		users[i] = e.UserID
	}
	for range maxCASAttempts {
		existing, err := bulk.ExistingEnrollments(ctx, provider, users)
		if err != nil {
			return ImportResult{}, err
		}
		skip := make(map[string]struct{}, len(existing))
		for _, u := range existing {
			skip[u] = struct{}{}
		}
		keep := make([]Enrollment, 0, len(rows)-len(existing))
		for _, e := range rows {
			if _, ok := skip[e.UserID]; !ok {
				keep = append(keep, e)
			}
		}
		res := ImportResult{Imported: len(keep), Skipped: existing}
		err = f.insertAudited(ctx, bulk, provider, rows, keep, res)
		var ee *ExistsError
		if errors.As(err, &ee) && !ee.InBatch {
			continue // enrolled since the look-up
		}
		if err != nil {
			return ImportResult{}, err
		}
		return res, nil
	}
	return ImportResult{}, fmt.Errorf("users of the batch keep enrolling meanwhile; import it again: %w", ErrConflict)
}

// insertAudited inserts keep, the rows of the batch (rows) to write,
// with the batch's audit entries in the same transaction (auditImport).
// Before, the entries were written after the batch, one write each: a
// resumed import of a large, mostly-overlapping file paid a store write
// per skipped user, and an audit log that failed then left the batch
// stored with its skips unaudited.
func (f *Framework) insertAudited(ctx context.Context, bulk BulkEnrollmentWriter, provider string, rows, keep []Enrollment, res ImportResult) error {
	return bulk.InsertEnrollmentsAudited(ctx, keep, f.auditImport(ctx, provider, rows, res))
}

// auditImport is a batch's audit entries: one for the batch (count,
// first and last user, and how many were skipped), and one per skipped
// user, so that the audit log says of each user why the import left them.
func (f *Framework) auditImport(ctx context.Context, provider string, rows []Enrollment, res ImportResult) []AuditEntry {
	if res.Imported == 0 && len(res.Skipped) == 0 {
		return nil
	}
	details := map[string]string{
		"count":      strconv.Itoa(res.Imported),
		"first_user": rows[0].UserID,
		"last_user":  rows[len(rows)-1].UserID,
	}
	if len(res.Skipped) > 0 {
		details["skipped"] = strconv.Itoa(len(res.Skipped))
	}
	entries := make([]AuditEntry, 0, 1+len(res.Skipped))
	entries = append(entries, f.stamp(ctx, AuditEntry{Event: EventImport, Provider: provider, Outcome: "imported", Details: details}))
	for _, u := range res.Skipped {
		entries = append(entries, f.stamp(ctx, AuditEntry{Event: EventImport, UserID: u, Provider: provider, Outcome: "skipped", Reason: "already_enrolled"}))
	}
	return entries
}
