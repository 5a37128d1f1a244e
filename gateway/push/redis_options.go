package push

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/redis/go-redis/v9"

	"gozer/gateway/config"
)

// RedisOptions turns push.cluster.redis into go-redis's universal options
// (for NewRedisClusterWith): the mode follows from the keys (config.PushRedis.Mode),
// the password comes from the config or the environment, and TLS verifies
// against the system's CAs or ca_file. It reads ca_file, so it fails when
// that file cannot be read or holds no certificate.
func RedisOptions(r *config.PushRedis) (*redis.UniversalOptions, error) {
	opt := &redis.UniversalOptions{
		Addrs: append([]string(nil), r.Addrs...), MasterName: r.MasterName, IsClusterMode: r.Cluster,
		Username: r.Username, Password: r.RedisPassword(), DB: r.DB,
	}
	if r.TLS {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if r.CAFile != "" {
			pem, err := os.ReadFile(r.CAFile)
			if err != nil {
				return nil, fmt.Errorf("push.cluster.redis.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("push.cluster.redis.ca_file: no PEM certificate in %s", r.CAFile)
			}
			opt.TLSConfig.RootCAs = pool
		}
	}
	return opt, nil
}
