//go:build interop

package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// gatewayBin is the imsgate binary built once for the whole run.
var gatewayBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	visible, err := visibleHostInterfaces()
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	if len(visible) > 0 {
		if os.Getenv(inNamespaceEnv) != "" {
			fmt.Fprintf(os.Stderr, "interop: still see interfaces %v inside the namespace\n", visible)
			return 1
		}
		return reexecInNamespace()
	}
	dir, err := os.MkdirTemp("", "imsgate-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	gatewayBin = filepath.Join(dir, "imsgate")
	// -race: real browser and SIP traffic is the best race hunt we have.
	build := exec.Command("go", "build", "-race", "-o", gatewayBin, "./cmd/imsgate")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "interop: build gateway:", err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "interop: goroutines left behind:", err)
			return 1
		}
	}
	return code
}

// repoRoot is the module root; go test runs in the package directory.
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return ".."
	}
	return filepath.Dir(wd)
}

// interopDir is this package's directory (scenarios, pages, node_modules).
func interopDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return wd
}
