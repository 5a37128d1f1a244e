// Package conf embeds Gozer's default configuration so that the binary runs
// with no file at all; conf/gozer.yaml stays the one place the defaults live.
package conf

import _ "embed"

// Default is the content of conf/gozer.yaml as it was at build time.
//
//go:embed gozer.yaml
var Default []byte
