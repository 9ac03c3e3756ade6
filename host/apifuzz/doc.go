// Package apifuzz holds the fuzz targets of the HTTP API's request
// boundary. They live apart from the host package's tests, whose TestMain
// builds every binary, so each fuzz worker starts in milliseconds and the
// fuzzer spends its time fuzzing.
package apifuzz
