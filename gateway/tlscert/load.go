package tlscert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"
)

// The reasons a pair is refused, for errors.Is. Errors name the file too.
var (
	ErrNoPEM       = errors.New("no PEM block")
	ErrKeyMismatch = errors.New("private key does not match the certificate")
	ErrExpired     = errors.New("certificate expired")
)

// file is one file as read by a load: its bytes or why it could not be read.
type file struct {
	path string
	data []byte
	err  error
}

// readAll reads every pair's files, certificate then key, and returns them
// with their fingerprint: a hash over each path and the sha256 of its bytes
// (or its read error). Run compares fingerprints rather than mtimes, which
// miss a change within the filesystem's time granularity and fire on a touch.
func readAll(pairs []Pair) ([]file, [32]byte) {
	files := make([]file, 0, 2*len(pairs))
	h := sha256.New()
	for _, p := range pairs {
		for _, path := range []string{p.CertFile, p.KeyFile} {
			data, err := os.ReadFile(path)
			f := file{path: path, data: data, err: err}
			files = append(files, f)
			fmt.Fprintf(h, "%q ", path)
			if err != nil {
				fmt.Fprintf(h, "error %q\n", err)
				continue
			}
			sum := sha256.Sum256(data)
			fmt.Fprintf(h, "%x\n", sum)
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return files, sum
}

// load parses and validates files (as readAll returns them, two per pair)
// into a set. Every failing pair is reported.
func load(files []file, now time.Time) (*certSet, error) {
	var entries []*entry
	var errs []error
	for i := 0; i+1 < len(files); i += 2 {
		e, err := loadPair(files[i], files[i+1], now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		entries = append(entries, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return newCertSet(entries), nil
}

func loadPair(cf, kf file, now time.Time) (*entry, error) {
	chain, leaf, err := parseChain(cf)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(kf)
	if err != nil {
		return nil, err
	}
	pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("tlscert: %s: %w in %s", kf.path, ErrKeyMismatch, cf.path)
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("tlscert: %s: %w on %s", cf.path, ErrExpired, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	// Leaf is set so that SupportsCertificate does not parse the
	// certificate again on every handshake.
	cert := &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}
	return &entry{
		pair:    Pair{CertFile: cf.path, KeyFile: kf.path},
		cert:    cert,
		names:   sanNames(leaf),
		keyType: keyType(leaf.PublicKey),
	}, nil
}

func readErr(f file) error {
	err := f.err
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is in the message already
	}
	return fmt.Errorf("tlscert: %s: unreadable: %w", f.path, err)
}

// parseChain returns the DER of every CERTIFICATE block, leaf first, and the
// parsed leaf. Other blocks (a key kept in the same file) are skipped.
func parseChain(f file) ([][]byte, *x509.Certificate, error) {
	if f.err != nil {
		return nil, nil, readErr(f)
	}
	var chain [][]byte
	for rest := f.data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return nil, nil, fmt.Errorf("tlscert: %s: %w of type CERTIFICATE", f.path, ErrNoPEM)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, nil, fmt.Errorf("tlscert: %s: parse certificate: %w", f.path, err)
	}
	return chain, leaf, nil
}

// parseKey returns the first private key of the file: PRIVATE KEY (PKCS#8),
// RSA PRIVATE KEY (PKCS#1) or EC PRIVATE KEY (SEC 1).
func parseKey(f file) (crypto.Signer, error) {
	if f.err != nil {
		return nil, readErr(f)
	}
	for rest := f.data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, fmt.Errorf("tlscert: %s: %w of type PRIVATE KEY", f.path, ErrNoPEM)
		}
		if b.Type != "PRIVATE KEY" && !strings.HasSuffix(b.Type, " PRIVATE KEY") {
			continue
		}
		key, err := parseKeyDER(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("tlscert: %s: parse private key: %w", f.path, err)
		}
		return key, nil
	}
}

func parseKeyDER(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
			return k.(crypto.Signer), nil
		}
		return nil, fmt.Errorf("key type %T not usable for TLS", k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PKCS#8, PKCS#1 or SEC 1 key (an encrypted key is not supported)")
}

// sanNames lists the leaf's DNS SANs (lowercased) and IP SANs: what the
// certificate is chosen by, and what Stats and the logs show.
func sanNames(leaf *x509.Certificate) []string {
	names := make([]string, 0, len(leaf.DNSNames)+len(leaf.IPAddresses))
	for _, n := range leaf.DNSNames {
		names = append(names, strings.ToLower(n))
	}
	for _, ip := range leaf.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok {
			names = append(names, a.Unmap().String())
		}
	}
	return names
}

// keyType names a public key as Stats shows it: ecdsa-p256, rsa-2048, ed25519.
func keyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ecdsa-" + strings.ToLower(strings.ReplaceAll(k.Curve.Params().Name, "-", ""))
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	case ed25519.PublicKey:
		return "ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// warnings are what an operator should know about a set that loads: an
// expiry within expiryWarning, a leaf no name can select.
func (cs *certSet) warnings(now time.Time) []string {
	var ws []string
	for _, e := range cs.all {
		left := e.leaf().NotAfter.Sub(now)
		if left < expiryWarning {
			days := int((left + 12*time.Hour) / (24 * time.Hour))
			ws = append(ws, fmt.Sprintf("tlscert: %s: certificate expires in %d days (%s)",
				e.pair.CertFile, days, e.leaf().NotAfter.UTC().Format(time.RFC3339)))
		}
		if len(e.names) == 0 {
			ws = append(ws, fmt.Sprintf("tlscert: %s: certificate has no DNS or IP subject alternative names: "+
				"only clients no other certificate fits get it", e.pair.CertFile))
		}
	}
	return ws
}
