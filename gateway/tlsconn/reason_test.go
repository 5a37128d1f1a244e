package tlsconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// serverError runs a server handshake against a client configured by conf
// over an in-memory pipe and returns the server's error.
func serverError(t *testing.T, conf *tls.Config, server *tls.Config) error {
	t.Helper()
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	_ = sc.SetDeadline(time.Now().Add(5 * time.Second))
	_ = cc.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		c := tls.Client(cc, conf)
		_ = c.Handshake()
		// TLS 1.3: a client learns of a refused certificate at its first read.
		_, _ = c.Read(make([]byte, 1))
		_ = cc.Close()
	}()
	s := tls.Server(sc, server)
	err := s.Handshake()
	if err == nil {
		_, err = s.Read(make([]byte, 1))
	}
	return err
}

// TestFailureReason: what /admin/tls counts a failed handshake as, for the
// failures a real client causes. A client that refuses the server's
// certificate sends an alert: client_alert (crypto/tls returns a received
// alert as a *net.OpError, which tls.AlertError does not match).
func TestFailureReason(t *testing.T) {
	server := &tls.Config{Certificates: []tls.Certificate{testCert()}}
	mtls := server.Clone()
	mtls.ClientAuth = tls.RequireAnyClientCert
	for _, tc := range []struct {
		name   string
		client *tls.Config
		server *tls.Config
		want   string
	}{
		{"the client does not trust the certificate", &tls.Config{ServerName: "localhost"}, server, "client_alert"},
		{"the client's maximum is below the server's minimum",
			&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12},
			&tls.Config{Certificates: []tls.Certificate{testCert()}, MinVersion: tls.VersionTLS13}, "protocol_version"},
		{"no client certificate for mutual TLS", &tls.Config{InsecureSkipVerify: true}, mtls, "client_certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := serverError(t, tc.client, tc.server)
			if err == nil {
				t.Fatal("the handshake succeeded")
			}
			if got := FailureReason(err); got != tc.want {
				t.Errorf("FailureReason(%q) = %s, want %s", err, got, tc.want)
			}
		})
	}
}

func TestIsRemoteAlert(t *testing.T) {
	alert := serverError(t, &tls.Config{ServerName: "localhost"}, &tls.Config{Certificates: []tls.Certificate{testCert()}})
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{alert, true},
		{fmt.Errorf("wrapped: %w", alert), true},
		{errors.New("remote error: tls: bad certificate"), false}, // only crypto/tls's own
		{&net.OpError{Op: "read", Err: errors.New("x")}, false},
		{nil, false},
	} {
		if got := IsRemoteAlert(tc.err); got != tc.want {
			t.Errorf("IsRemoteAlert(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestFailureReasonTimeout: a handshake ended by a socket deadline (the admin
// listener's, set by fasthttp) is a timeout, as the HTTPS listener's own is.
func TestFailureReasonTimeout(t *testing.T) {
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	_ = sc.SetDeadline(time.Now().Add(50 * time.Millisecond)) // the client never says a word
	err := tls.Server(sc, &tls.Config{Certificates: []tls.Certificate{testCert()}}).Handshake()
	if got := FailureReason(err); got != "timeout" {
		t.Errorf("FailureReason(%v) = %s, want timeout", err, got)
	}
	if got := FailureReason(fmt.Errorf("wrapped: %w", errHandshakeTimeout)); got != "timeout" {
		t.Errorf("FailureReason(the handshake timeout) = %s, want timeout", got)
	}
}
