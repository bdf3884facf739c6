// Command krew writes the plugin's krew manifest: config/krew/homeostat.yaml with the
// version and the sha256 of each platform's archive in dist/ filled in. It fails when an
// archive the manifest names is missing, so a manifest never points at nothing.
//
//	go run ./hack/krew -template config/krew/homeostat.yaml -version v0.1.0 -dist dist
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	template := flag.String("template", "config/krew/homeostat.yaml", "The manifest template.")
	version := flag.String("version", "", "The release version, for example v0.1.0.")
	dist := flag.String("dist", "dist", "The directory of the archives kubectl-homeostat_<os>_<arch>.tar.gz.")
	flag.Parse()
	out, err := render(*template, *version, *dist)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Print(out)
}

var shaPlaceholder = regexp.MustCompile(`\{\{SHA256 ([a-z0-9]+)/([a-z0-9]+)\}\}`)

// render fills the template's {{VERSION}} and {{SHA256 os/arch}} placeholders.
func render(templatePath, version, dist string) (string, error) {
	if version == "" {
		return "", fmt.Errorf("-version is empty: give the release version, for example -version v0.1.0")
	}
	b, err := os.ReadFile(templatePath)
	if err != nil {
		return "", err
	}
	s := strings.ReplaceAll(string(b), "{{VERSION}}", version)
	var failure error
	s = shaPlaceholder.ReplaceAllStringFunc(s, func(m string) string {
		p := shaPlaceholder.FindStringSubmatch(m)
		sum, err := fileSHA256(filepath.Join(dist, fmt.Sprintf("kubectl-homeostat_%s_%s.tar.gz", p[1], p[2])))
		if err != nil && failure == nil {
			failure = fmt.Errorf("the manifest names the %s/%s archive: %w (make plugin-dist builds it)", p[1], p[2], err)
		}
		return sum
	})
	if failure != nil {
		return "", failure
	}
	return s, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
