// Package configs is evpnd's configuration: the schema of the daemon's YAML
// file, its defaults, its validation, and the values derived from it (RDs
// and route targets). The example files in this directory (leaf1.yaml,
// leaf2.yaml, rr.yaml, ebgp-leaf.yaml, and l3-leaf.yaml for tenant VRFs)
// document every key; a test loads each
// of them, so they stay valid.
//
// The package is pure: it reads a file in Load and does nothing else, with
// no kernel, BGP or clock access.
//
// # Using it
//
//  1. Load(path) reads a file, then does what steps 2-4 do, in order. Use
//     the steps directly for a config that does not come from a file.
//     Load reports the problems of steps 2 and 4 together: what Parse
//     finds is taken out of the document, the rest is validated, and what
//     follows from a problem already reported is left out.
//     Limits, checked before parsing so that a wrong file costs little:
//     MaxFileSize bytes, MaxEntries lines and list items, UTF-8 text only;
//     and MaxAliasValues values added by aliases. An error keeps at most
//     1000 problems, prints the first MaxProblemsShown and counts the rest,
//     and quotes at most 64 bytes of a value.
//  2. Parse decodes exactly one YAML document, strictly. An unknown key, a
//     value of the wrong type, and an address, prefix or duration that does
//     not parse are each an error naming the key path and line. Durations
//     are Go durations with a unit ("30s", "3m"); a bare number is refused.
//  3. ApplyDefaults fills in unset fields; its comment lists every default.
//     A zero the file sets explicitly is not unset: "hold-time: 0s" stays
//     0s, and Validate refuses it.
//     Notably, a leaf's vtep-ip defaults to its router-id, and an L2VNI's rd
//     to "<router-id>:N" with N = AutoRDNumber(VNI), which depends on the
//     VNI alone, so adding a VNI never changes another's RD.
//  4. Validate reports every problem at once in a *ValidationError, whose
//     Problems each carry the key path (such as "l2vnis[1].vni"), the line
//     when known, the bad value, and what to do about it. It checks the
//     config as ApplyDefaults would complete it and does not modify it.
//  5. The daemon then reads the fields directly, and the derived values
//     through L2VNIRD, ImportRTs, ExportRTs, VRFRD, VRFImportRTs,
//     VRFExportRTs, VRFRouterMAC, MemberGatewayMAC,
//     GracefulRestart.IsEnabled, Neighbor.IsRouteReflectorClient and
//     SlogLevel. These assume a validated config. Warnings lists what is
//     valid but probably not meant (evpnd validate prints it).
//
// Empty import-rts and export-rts mean "auto": the RT ASN:VNI in 2-octet-AS
// form, as FRR derives it. An auto import matches on the VNI part alone
// (DESIGN §3.1), so that leafs of an eBGP fabric, each in its own AS, import
// each other's routes; ImportRTs says when that applies.
package configs
