// Command gozer runs the Gozer edge gateway.
//
//	gozer [-config FILE]          serve (without -config: the embedded conf/gozer.yaml)
//	gozer -check [-config FILE]   validate the config and exit
//	gozer push-token [-config FILE] -client ID [-ttl 1h]
//	                              print a push token for client ID (signed with
//	                              push.token_secret or $GOZER_PUSH_SECRET)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gozer/gateway/config"
	"gozer/gateway/push"
	"gozer/gateway/server"
	"gozer/gateway/telemetry"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "push-token" {
		return pushToken(args[1:], os.Stdout, os.Stderr)
	}
	fs := flag.NewFlagSet("gozer", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (default: the embedded conf/gozer.yaml)")
	check := fs.Bool("check", false, "validate the configuration and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gozer: invalid configuration: %v\n", err)
		return 1
	}
	if *check {
		name := *path
		if name == "" {
			name = "embedded conf/gozer.yaml"
		}
		fmt.Printf("gozer: configuration %s is valid\n", name)
		return 0
	}

	log, closeLog, err := telemetry.NewProcessLogger(cfg.Log.Level, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gozer: %v\n", err)
		return 1
	}
	defer closeLog()
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	if err := srv.Start(); err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Info().Str("signal", s.String()).Dur("drain_timeout", cfg.Server.DrainTimeout).Msg("draining")
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Error().Err(err).Msg("shutdown")
	}
	log.Info().Msg("stopped")
	return 0
}

// pushToken prints a push token: what a device sends to open a push connection
// through the shipped auth filter (scripts/inbound/05_push_auth.lua).
func pushToken(args []string, stdout, stderr *os.File) int {
	fs := flag.NewFlagSet("gozer push-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file whose push.token_secret signs (default: the embedded one)")
	client := fs.String("client", "", "client id the token is for (required)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *client == "" || *ttl <= 0 {
		fmt.Fprintln(stderr, "gozer push-token: -client ID is required and -ttl must be positive")
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "gozer push-token: invalid configuration: %v\n", err)
		return 1
	}
	secret := cfg.Push.Secret()
	if len(secret) == 0 {
		fmt.Fprintf(stderr, "gozer push-token: no secret: set push.token_secret in the config or %s\n", config.SecretEnv)
		return 1
	}
	tok, err := push.Sign(secret, *client, time.Now().Add(*ttl))
	if err != nil {
		fmt.Fprintf(stderr, "gozer push-token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

// loadConfig reads the file at path, or the embedded default when path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default()
	}
	return config.Load(path)
}
