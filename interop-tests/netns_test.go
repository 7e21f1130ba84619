//go:build interop

package interop

import (
	"fmt"
	"net"
	"os"
	"os/exec"
)

// inNamespaceEnv marks the test binary re-executed inside its own namespace.
const inNamespaceEnv = "IMSGATE_INTEROP_NETNS"

// visibleHostInterfaces names the up, non-loopback interfaces: Chromium
// would gather ICE candidates on them, so the suite refuses to run there.
func visibleHostInterfaces() ([]string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var names []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp != 0 && ifc.Flags&net.FlagLoopback == 0 {
			names = append(names, ifc.Name)
		}
	}
	return names, nil
}

// reexecInNamespace runs this test binary again, with the same arguments,
// inside a new network namespace whose only interface is lo (brought up).
// It returns the child's exit code.
func reexecInNamespace() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop: find test binary:", err)
		return 1
	}
	args := append([]string{"--net", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`, self}, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	// The child builds the gateway offline: modules must already be in the cache.
	cmd.Env = append(os.Environ(), inNamespaceEnv+"=1", "GOPROXY=off", "GOTOOLCHAIN=local")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "interop: run in a network namespace (needs root and util-linux unshare):", err)
		return 1
	}
	return 0
}
