// Package cli is the twofactor command: the admin's commands (serve,
// init, providers, doctor, reset, unlock, digest, rekey, import, keygen,
// version). serve runs the service (package host); the others open the
// store or check the install.
package cli
