// Package evpn is evpnd's pure EVPN model: route identities and contents
// (RFC 7432 type-2 and type-3, RFC 9136 type-5 as carried over VXLAN per
// RFC 8365), RD and RT derivation, import by route target, and MAC
// selection with mobility and duplicate detection (RFC 7432 §15).
//
// Nothing here does IO, starts goroutines or reads the clock: time is passed
// in by the caller. The GoBGP adapter in package speaker converts between
// these types and the wire; vtep/ and fib/ consume them.
package evpn
