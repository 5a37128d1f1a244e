// Command demo-origin is a small HTTP/1.1 origin server to put behind Gozer.
//
// `make run` starts it next to the gateway so that `curl -i localhost:8080/` shows a
// proxied answer, and the end-to-end tests in test/ start it as a real origin process
// that misbehaves on command (slow, hanging, resetting, closing mid-body).
//
//	demo-origin -addr 127.0.0.1:9000 [-name NAME] [-auth-delay D]
//
// With -addr 127.0.0.1:0 it picks a free port; either way it prints
// "demo-origin listening on ADDR" once it accepts connections.
//
// Endpoints (every response carries X-Origin-Name: NAME):
//
//	/                     text page: name, method, path and the request headers, sorted
//	/headers              JSON: method, uri, host, proto, content_length, transfer_encoding, headers
//	/echo                 streams the request body back (Content-Type copied)
//	/sink                 reads the whole body, answers {"bytes": N, "sha256": "..."}
//	/slow-sink?delay=D    waits D before reading the body at all, then answers like /sink
//	/bytes?n=N[&chunked=1] N deterministic bytes (byte i = i*7 mod 251); HEAD supported
//	/slow?delay=2s        waits, then answers 200
//	/slow-body?n=N&delay=D sends the head and N/2 bytes, waits D, sends the rest
//	/status?code=503      answers that status with a short body
//	/reset                closes the connection with a TCP RST before answering
//	/close-mid?n=N        declares Content-Length N, sends N/2 bytes, closes
//	/hang                 never answers (until the client goes away)
//	/counter              how many /counter requests this process has served, this one included
//	/seen?id=X            200 if X-Test-Id: X ever reached this origin (even in raw bytes
//	                      it rejected), else 404; JSON counts of requests, complete ones, connections
//	/auth?delay=D         a toy auth service: "Authorization: Bearer allow:USER" is allowed (200,
//	                      X-Auth-User), any other token 403, none 401; waits D (-auth-delay) first
//	/ws                   a websocket echo: every message back as it came (gorilla/websocket)
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "host:port to listen on (port 0 picks a free one)")
	name := flag.String("name", "demo", "name shown in answers and in the X-Origin-Name header")
	authDelay := flag.Duration("auth-delay", 0, "how long /auth thinks before it answers (?delay= overrides)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("demo-origin: ")

	o := newOrigin(*name)
	o.authDelay = *authDelay
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("listen %s: %v", *addr, err)
	}
	srv := &http.Server{
		Handler:           o.handler(),
		ReadHeaderTimeout: time.Minute,
		ErrorLog:          log.New(os.Stderr, "demo-origin: ", 0),
	}
	fmt.Printf("demo-origin listening on %s\n", ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(&recordingListener{Listener: ln, seen: o.seen}) }()
	select {
	case err := <-errc:
		log.Fatalf("serve: %v", err)
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}
}
