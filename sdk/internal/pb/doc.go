// Package pb holds the generated twofactor.v1 wire types. It is internal so
// the SDK's public API does not change when the wire does.
package pb
