// Command kubectl-homeostat is the kubectl plugin of Homeostat: `kubectl homeostat why`,
// `timeline`, `simulate`, `pause` and `resume`. Installed on PATH (make plugin, or krew),
// kubectl runs it as `kubectl homeostat`.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/homeostat-dev/homeostat/internal/cli"
)

func main() {
	os.Exit(cli.Main(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}, os.Args[1:]))
}
