// Command gozer runs the Gozer edge gateway.
//
//	gozer [-config FILE]          serve (without -config: the embedded conf/gozer.yaml)
//	gozer -check [-config FILE]   validate the config and exit
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"gozer/gateway/config"
	"gozer/gateway/server"
	"gozer/gateway/telemetry"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("gozer", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (default: the embedded conf/gozer.yaml)")
	check := fs.Bool("check", false, "validate the configuration and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var (
		cfg *config.Config
		err error
	)
	if *path == "" {
		cfg, err = config.Default()
	} else {
		cfg, err = config.Load(*path)
	}
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
