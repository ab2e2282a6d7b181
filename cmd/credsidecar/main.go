// Command credsidecar serves AWS role credentials to unmodified programs
// through the EC2 instance-metadata and ECS container-credential endpoints.
// This file only parses the command line; serve.go wires the daemon.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/credsidecar/credsidecar/config"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes of PRODUCT.md.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors that are the user's command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var xe *exitStatusError
	if errors.As(err, &xe) {
		return xe.code // exec: the command's own status, no extra message
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintln(stderr, "credsidecar:", err)
		return exitUsage
	}
	fmt.Fprintln(stderr, "credsidecar:", err)
	return exitFailure
}

const topUsage = `credsidecar — AWS role credentials for unmodified programs, over IMDS and the ECS endpoint

Usage:
  credsidecar serve        [--config FILE]   run the daemon until SIGINT/SIGTERM (SIGHUP reloads)
  credsidecar check-config [--config FILE]   validate a config; each problem with its line; exit 1 if any
  credsidecar creds --role NAME [--token-file F]      print one role's credentials as credential_process JSON
  credsidecar exec --role NAME [--token-file F] -- CMD  run CMD with the ECS full URI of the running sidecar
  credsidecar simulate --role NAME --action A --resource ARN [--session-policy FILE]
                                             what the role's sessions may do; exit 1 if denied
  credsidecar explain [--role NAME] [--token T|--token-file F] [--addr IP] [--uid N] [--action A --resource ARN] [--json]
                                             why a caller would or would not get credentials; exit 1 if not
  credsidecar version                        version, commit, Go version

Every command takes --log-format json|console and --log-level debug|info|warn|error.
--config defaults to $CREDSIDECAR_CONFIG, else /etc/credsidecar/config.yaml.
`

// common are the flags every command has.
type common struct {
	configPath string
	logFormat  string
	logLevel   string
}

func (c *common) register(fs *flag.FlagSet) {
	def := os.Getenv("CREDSIDECAR_CONFIG")
	if def == "" {
		def = "/etc/credsidecar/config.yaml"
	}
	fs.StringVar(&c.configPath, "config", def, "config file")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or console")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
}

func (c *common) logger(stderr io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(c.logLevel)
	if err != nil {
		return nil, &usageError{fmt.Sprintf("--log-level: %v", err)}
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch c.logFormat {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, &usageError{fmt.Sprintf("--log-format must be json or console, not %q", c.logFormat)}
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(stderr)), lvl)), nil
}

func newFlagSet(name string, stderr io.Writer, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s: unexpected arguments: %s", fs.Name(), strings.Join(fs.Args(), " "))}
	}
	return nil
}

// run is the whole program, testable: args without the program name.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return &usageError{"a command is required"}
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, topUsage)
		return nil
	case "version", "--version":
		fmt.Fprintf(stdout, "credsidecar %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "serve":
		var c common
		fs := newFlagSet("serve", stderr, "Usage: credsidecar serve [--config FILE]\n\n")
		c.register(fs)
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		log, err := c.logger(stderr)
		if err != nil {
			return err
		}
		defer log.Sync()
		return serve(ctx, c.configPath, log, serveHooks{})
	case "creds":
		return runCreds(ctx, args[1:], stdout, stderr)
	case "exec":
		return runExec(ctx, args[1:], stdout, stderr)
	case "simulate":
		return runSimulate(args[1:], stdout, stderr)
	case "explain":
		return runExplain(args[1:], stdout, stderr)
	case "check-config":
		var c common
		fs := newFlagSet("check-config", stderr, "Usage: credsidecar check-config [--config FILE]\n\n")
		c.register(fs)
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		return checkConfig(c.configPath, stdout)
	default:
		fmt.Fprint(stderr, topUsage)
		return &usageError{fmt.Sprintf("unknown command %q", args[0])}
	}
}

// checkConfig prints every problem with its line, and warnings; it fails
// when there is any problem.
func checkConfig(path string, stdout io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if w := dockerReachable(cfg); w != "" {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d roles, %d clients, sts.mode %s)\n", path, len(cfg.Roles), len(cfg.Clients), cfg.STS.Mode)
	return nil
}
