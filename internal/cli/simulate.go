package cli

import "github.com/spf13/cobra"

func newSimulateCommand(o *Options) *cobra.Command {
	return &cobra.Command{Use: "simulate APP", Args: oneApp}
}
