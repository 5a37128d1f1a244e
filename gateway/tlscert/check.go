package tlscert

import "fmt"

// Check loads the pairs like New, for `gozer -check`, without generating
// anything and without logging. err is what New would fail with (an
// unreadable file, no PEM block, a key that does not match, an expired
// certificate, a bad option); warnings are what deserves attention in a
// configuration that works: a certificate expiring within 30 days, a leaf
// without SANs, the development certificate that New will generate or reuse.
func Check(o Options) (warnings []string, err error) {
	o, err = withDefaults(o)
	if err != nil {
		return nil, err
	}
	if len(o.Pairs) == 0 {
		return []string{fmt.Sprintf("tlscert: no certificate pairs: a self-signed development certificate "+
			"will be generated in %s (or reused while valid)", o.DevDir)}, nil
	}
	files, _ := readAll(o.Pairs)
	now := o.Now()
	set, err := load(files, now)
	if err != nil {
		return nil, err
	}
	return set.warnings(now), nil
}
