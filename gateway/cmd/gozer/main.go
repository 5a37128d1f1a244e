// Command gozer runs the Gozer edge gateway.
//
//	gozer [-config FILE]          serve (without -config: the embedded conf/gozer.yaml)
//	gozer -check [-config FILE]   validate the config and exit
//	gozer -version                print the version and the main dependencies'
//	gozer push-token [-config FILE] -client ID [-ttl 1h] [-topics a,b]
//	                              print a push token for client ID (signed with
//	                              push.token_secret or $GOZER_PUSH_SECRET)
//
// Exit status: 0 after a clean drain (or a valid -check), 1 for an invalid
// configuration or a failed start, 2 for a command line it does not understand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"gozer/gateway/config"
	"gozer/gateway/push"
	"gozer/gateway/server"
	"gozer/gateway/telemetry"
)

// Exit statuses.
const (
	exitOK    = 0
	exitFail  = 1 // bad configuration, cannot start
	exitUsage = 2 // the command line is wrong
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageHead = `Gozer, an edge gateway.

Usage:
  gozer [-config FILE]             serve (without -config: the embedded conf/gozer.yaml)
  gozer -check [-config FILE]      validate the configuration and exit (1 when invalid)
  gozer -version                   print the version and the main dependencies' versions
  gozer push-token -client ID [-ttl 1h] [-topics a,b] [-config FILE]
                                   print a push token for client ID

Subcommands:
  push-token   print a push token (run "gozer push-token -h" for its flags)
  help         print this text

Flags:
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "push-token":
			return pushToken(args[1:], stdout, stderr)
		case "help":
			fs, _ := mainFlags(stdout)
			fs.Usage()
			return exitOK
		}
	}
	fs, o := mainFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return exitOK
		}
		return exitUsage // the flag package printed the error and the usage
	}
	if fs.NArg() > 0 {
		// A stray word ("gozer serve", "gozer help me") must not start a gateway on
		// the embedded config as if nothing had been said.
		fmt.Fprintf(stderr, "gozer: unknown argument %q\n\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if o.version {
		printVersion(stdout)
		return exitOK
	}
	data, name, err := config.Read(o.config)
	if err != nil {
		fmt.Fprintf(stderr, "gozer: invalid configuration: %v\n", err)
		return exitFail
	}
	cfg, err := config.Parse(data, name)
	if err != nil {
		fmt.Fprintf(stderr, "gozer: invalid configuration: %v\n", err)
		return exitFail
	}
	if o.check {
		return check(cfg, name, stdout, stderr)
	}
	return serve(cfg, o.config, data, o.watch)
}

// mainOptions are the main command's flags.
type mainOptions struct {
	config  string
	check   bool
	version bool
	watch   bool
}

// mainFlags returns the main command's flag set, printing errors and the
// usage to out.
func mainFlags(out io.Writer) (*flag.FlagSet, *mainOptions) {
	o := &mainOptions{}
	fs := flag.NewFlagSet("gozer", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.config, "config", "", "configuration `file` (default: the embedded conf/gozer.yaml)")
	fs.BoolVar(&o.check, "check", false, "validate the configuration (and what start-up would refuse) and exit")
	fs.BoolVar(&o.watch, "watch", true, "reload the configuration when its file changes (SIGHUP and POST /admin/config/reload reload it either way)")
	fs.BoolVar(&o.version, "version", false, "print the version, commit, Go version and main dependencies, and exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHead)
		fs.PrintDefaults()
	}
	return fs, o
}

// check validates cfg (called name in what it prints) as start-up would,
// without binding anything.
func check(cfg *config.Config, name string, stdout, stderr io.Writer) int {
	// The logger's writer closes what it writes to when closed: give it a
	// stderr it cannot close, the answer below still goes there.
	log, closeLog, err := telemetry.NewProcessLogger("warn", struct{ io.Writer }{stderr})
	if err != nil {
		fmt.Fprintf(stderr, "gozer: %v\n", err)
		return exitFail
	}
	err = server.Check(cfg, log)
	closeLog()
	if err != nil {
		fmt.Fprintf(stderr, "gozer: configuration %s would not start: %v\n", name, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "gozer: configuration %s is valid\n", name)
	return exitOK
}

// serve runs the gateway until SIGTERM or SIGINT, then drains; SIGHUP reloads
// the configuration (data, read from path) and the Lua scripts, and never
// stops it.
func serve(cfg *config.Config, path string, data []byte, watch bool) int {
	// A log collector that goes away closes our stdout or stderr: Go's
	// default is then to die of SIGPIPE at the next log write. A gateway
	// keeps serving instead; the writes fail (EPIPE), counted for the access
	// log (gozer_access_log_dropped_bytes_total{reason="write_error"}).
	// Notify, not Ignore: an ignored signal would stay ignored in any child
	// process; a notified one goes back to its default there. The channel is
	// never read (Notify drops what does not fit).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	log, closeLog, err := telemetry.NewProcessLogger(cfg.Log.Level, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gozer: %v\n", err)
		return exitFail
	}
	defer closeLog()
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return exitFail
	}
	srv.SetConfigSource(path, data, watch)
	// Before Start: once the health check answers, a SIGHUP must reload, not
	// kill the process with the signal's default action.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := srv.Start(); err != nil {
		log.Error().Err(err).Msg("cannot start")
		return exitFail
	}

	var s os.Signal
	for s == nil || s == syscall.SIGHUP {
		select {
		case s = <-sig:
			if s == syscall.SIGHUP {
				srv.Reload()
			}
		case err := <-srv.Done():
			// The loops are gone with every connection they held: nothing to
			// drain. Exit so that the supervisor restarts the gateway.
			log.Error().Err(err).Msg("exiting: the event loops stopped")
			srv.Abandon() // their last access-log lines
			return exitFail
		}
	}
	drain := srv.DrainTimeout() // a reload may have changed it
	log.Info().Str("signal", s.String()).Dur("drain_timeout", drain).Msg("draining")
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Error().Err(err).Msg("shutdown")
	}
	log.Info().Msg("stopped")
	return exitOK
}

// pushToken prints a push token: what a device sends to open a push connection
// through the shipped auth filter (scripts/inbound/05_push_auth.lua).
func pushToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gozer push-token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration `file` whose push.token_secret signs (default: the embedded one)")
	client := fs.String("client", "", "client `id` the token is for (required)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	topics := fs.String("topics", "", "comma-separated `topics` the connection is subscribed to at connect (none by default)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gozer push-token -client ID [-ttl 1h] [-topics a,b] [-config FILE]\n\n"+
			"Prints a push token for client ID, signed with push.token_secret or $%s.\n\nFlags:\n", config.SecretEnv)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gozer push-token: unknown argument %q\n\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if *client == "" || *ttl <= 0 {
		fmt.Fprintln(stderr, "gozer push-token: -client ID is required and -ttl must be positive")
		return exitUsage
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "gozer push-token: invalid configuration: %v\n", err)
		return exitFail
	}
	secret := cfg.Push.Secret()
	if len(secret) == 0 {
		fmt.Fprintf(stderr, "gozer push-token: no secret: set push.token_secret in the config or %s\n", config.SecretEnv)
		return exitFail
	}
	claims := push.Claims{ClientID: *client}
	if *topics != "" {
		claims.Topics = strings.Split(*topics, ",")
	}
	tok, err := push.SignClaims(secret, claims, time.Now().Add(*ttl))
	if err != nil {
		fmt.Fprintf(stderr, "gozer push-token: %v\n", err)
		return exitFail
	}
	fmt.Fprintln(stdout, tok)
	return exitOK
}

// loadConfig reads the file at path, or the embedded default when path is empty.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Default()
	}
	return config.Load(path)
}
