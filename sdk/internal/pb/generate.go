package pb

// The generators are pinned in tools/go.mod (kept out of the SDK's go.mod);
// protoc comes from Debian's protobuf-compiler. Regenerate with `make proto`.
//go:generate sh -c "cd ../../.. && make proto"
