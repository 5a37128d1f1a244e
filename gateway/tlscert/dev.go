package tlscert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
)

// The development certificate's files in Options.DevDir.
const (
	DevCertName = "dev-cert.pem"
	DevKeyName  = "dev-key.pem"
)

const (
	devValidity = 90 * 24 * time.Hour
	// devMinLeft: a development certificate with less left is replaced
	// before it is served, so that a long-running dev server does not
	// start failing in the middle of someone's work.
	devMinLeft = 7 * 24 * time.Hour
	// devBackdate covers clocks a little behind ours.
	devBackdate = time.Hour
)

// DevPair is the development pair in dir.
func DevPair(dir string) Pair {
	return Pair{CertFile: filepath.Join(dir, DevCertName), KeyFile: filepath.Join(dir, DevKeyName)}
}

// GenerateDev writes a self-signed ECDSA P-256 certificate for localhost,
// 127.0.0.1 and ::1, valid 90 days from now, as dir/dev-cert.pem (0644) and
// dir/dev-key.pem (0600), dir created 0700 if missing (an existing
// directory's mode is left alone). The certificate is its own CA (IsCA,
// KeyUsageCertSign), so a client trusts it as a root: curl --cacert
// dir/dev-cert.pem. Each file is replaced by a rename, never seen half written.
func GenerateDev(dir string, now time.Time) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("tlscert: development key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return "", "", fmt.Errorf("tlscert: development certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Gozer development"}, CommonName: "localhost"},
		NotBefore:             now.Add(-devBackdate),
		NotAfter:              now.Add(devValidity),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("tlscert: development certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("tlscert: development key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("tlscert: development directory: %w", err)
	}
	p := DevPair(dir)
	if err := writeAtomic(p.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeAtomic(p.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return p.CertFile, p.KeyFile, nil
}

// writeAtomic writes path through a temporary file in its directory, created
// 0600 by os.CreateTemp, so the key is never readable by others, not even
// for a moment.
func writeAtomic(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("tlscert: %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("tlscert: %s: %w", path, err)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ensureDev returns the development pair in dir, reusing the files if they
// load (present, parseable, matching) and have at least devMinLeft to go,
// generating new ones otherwise. The log says which, and why.
func ensureDev(dir string, now time.Time, log zerolog.Logger) (Pair, error) {
	p := DevPair(dir)
	files, _ := readAll([]Pair{p})
	set, err := load(files, now)
	var reason string
	switch {
	case err != nil:
		reason = err.Error()
	case set.all[0].leaf().NotAfter.Sub(now) < devMinLeft:
		reason = "expires within 7 days"
	default:
		log.Info().Str("cert_file", p.CertFile).Time("not_after", set.all[0].leaf().NotAfter).
			Msg("reusing the development certificate")
		return p, nil
	}
	if _, _, err := GenerateDev(dir, now); err != nil {
		return Pair{}, err
	}
	log.Info().Str("cert_file", p.CertFile).Str("reason", reason).Msg("generated a development certificate")
	return p, nil
}
