// Package storetest is the conformance suite every framework.Store
// implementation must pass. One suite for all backends is what lets the
// framework rely on the interface alone: single use of a code rests on
// Update being compare-and-swap, and "nothing enrolled is ever lost" rests
// on PutPending never touching an active enrollment, whichever database is
// underneath.
//
// An implementation's test calls Run with a function that opens a fresh,
// empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) framework.Store {
//			s, err := sqlite.Create(t.Context(), filepath.Join(t.TempDir(), "db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Run closes each store when its subtest ends; open may register cleanups
// of its own (temporary directories, schemas), which run after the close.
//
// Where the interface leaves a detail open the suite pins one answer, so
// that backends agree with each other:
//
//   - List orders by provider name byte-wise, as Go compares strings (a
//     PostgreSQL backend needs COLLATE "C", not the database's locale).
//   - Times come back in UTC, equal to what was written to within a
//     microsecond (PostgreSQL's resolution); a zero ConfirmedAt stays zero.
//   - PutPending stores a pending enrollment at version 1 whatever Status,
//     Version and ConfirmedAt the caller passed; replacing a pending
//     enrollment takes State, CreatedAt and UpdatedAt from the new one.
//   - Update leaves CreatedAt alone.
//   - A nil State is stored as an empty one, and the store keeps its own copy
//     of State: the caller may reuse the slice it passed or was given.
//
// The suite uses only the interface, so it says nothing about how a backend
// is configured; backend specifics (files, pools, migrations) belong in the
// backend's own tests.
package storetest
