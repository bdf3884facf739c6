package cli

import "github.com/spf13/cobra"

func newWhyCommand(o *Options) *cobra.Command {
	return &cobra.Command{Use: "why APP", Args: oneApp}
}
