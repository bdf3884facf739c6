package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/homeostat-dev/homeostat/api/v1alpha1"
)

// Version is the plugin's version, stamped by `make plugin` (-ldflags -X).
var Version = "dev"

// defaultWidth is the text width when the output is not a terminal and COLUMNS is unset.
const defaultWidth = 100

// minWidth is the narrowest text the plugin lays out; a narrower --width is raised to it.
const minWidth = 40

// Options are the flags every command shares, and what the commands need from outside:
// the streams, the clock and the cluster.
type Options struct {
	Streams genericiooptions.IOStreams
	// Config holds kubectl's kubeconfig flags (--kubeconfig, --context, -n, ...).
	Config *genericclioptions.ConfigFlags
	// Output is -o: "" (text), json or yaml.
	Output string
	// Width is the text width; 0 means the terminal's, else COLUMNS, else 100.
	Width int
	// Now is the clock; time.Now outside tests.
	Now func() time.Time

	scheme *runtime.Scheme
	client client.WithWatch
}

// Scheme is what the plugin reads: the built-in kinds and Homeostat's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

// NewCommand is `kubectl homeostat` with its subcommands.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{Streams: streams, Config: genericclioptions.NewConfigFlags(true), Now: time.Now, scheme: Scheme()}
	cmd := &cobra.Command{
		Use:   "kubectl-homeostat",
		Short: "Explain, replay and pause what Homeostat decides for an AutonomicApp",
		Long: `kubectl homeostat explains what Homeostat decided for an AutonomicApp and why, lists
what happened when, replays recorded sensor history through a policy, and pauses or
resumes an app.

Exit codes: 0 success, 1 any other failure, 2 a usage error, 3 the app or Homeostat's
CRDs are missing, 4 a permission is missing, 5 Prometheus is missing or failed.`,
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl homeostat",
		},
	}
	cmd.SetIn(streams.In)
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err.Error()) })
	o.Config.AddFlags(cmd.PersistentFlags())
	cmd.PersistentFlags().StringVarP(&o.Output, "output", "o", "", "Output format: json or yaml; text when empty.")
	cmd.PersistentFlags().IntVar(&o.Width, "width", 0, "Text width in columns; the terminal's when 0, else $COLUMNS, else 100.")
	cmd.PersistentPreRunE = func(*cobra.Command, []string) error { return o.validate() }
	cmd.AddCommand(newWhyCommand(o), newTimelineCommand(o), newSimulateCommand(o), newPauseCommand(o, true), newPauseCommand(o, false))
	return cmd
}

// Main runs the plugin with args and returns its exit code; errors are printed on the
// error stream, prefixed with "error: " as kubectl prints them.
func Main(streams genericiooptions.IOStreams, args []string) int {
	cmd := NewCommand(streams)
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(streams.ErrOut, "error: %s\n", err)
	if strings.HasPrefix(err.Error(), "unknown command ") {
		// cobra's own error for a subcommand that does not exist: a usage error.
		return ExitUsage
	}
	return exitCode(err)
}

func (o *Options) validate() error {
	switch o.Output {
	case "", "json", "yaml":
	default:
		return usageError(fmt.Sprintf("--output %q is not supported: use json or yaml, or leave it out for text", o.Output))
	}
	if o.Width < 0 {
		return usageError(fmt.Sprintf("--width %d is negative: give a number of columns, or 0 for the terminal's", o.Width))
	}
	return nil
}

// width is the text width to lay out for.
func (o *Options) width() int {
	w := o.Width
	if w == 0 {
		if f, ok := o.Streams.Out.(*os.File); ok {
			if tw, _, err := term.GetSize(int(f.Fd())); err == nil && tw > 0 {
				w = tw
			}
		}
	}
	if w == 0 {
		if c, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && c > 0 {
			w = c
		}
	}
	if w == 0 {
		w = defaultWidth
	}
	return max(w, minWidth)
}

// namespace is -n, else the kubeconfig context's namespace, else "default".
func (o *Options) namespace() (string, error) {
	ns, _, err := o.Config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

// restConfig is the kubeconfig's connection to the API server.
func (o *Options) restConfig() (*rest.Config, error) {
	cfg, err := o.Config.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	return cfg, nil
}

// kube is a client of the API server (cached per run).
func (o *Options) kube() (client.WithWatch, error) {
	if o.client != nil {
		return o.client, nil
	}
	cfg, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: o.scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server %s: %w", cfg.Host, err)
	}
	o.client = c
	return c, nil
}
