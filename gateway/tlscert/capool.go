package tlscert

import (
	"crypto/x509"
	"fmt"
	"os"
)

// CAPool reads the CA certificates of a PEM file into a pool: the roots an
// origin's certificate must chain to, or the CAs that sign client
// certificates (mutual TLS). The error names the file. Any goroutine.
func CAPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
