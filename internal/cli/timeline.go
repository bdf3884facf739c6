package cli

import "github.com/spf13/cobra"

func newTimelineCommand(o *Options) *cobra.Command {
	return &cobra.Command{Use: "timeline APP", Args: oneApp}
}
