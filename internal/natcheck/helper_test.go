package natcheck

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/imsgate/imsgate/internal/stunserver"
)

// helperEnv, when set, makes TestHelperProcess act as a program instead of
// a test: "natcheck" runs Main, "stunserver" runs a server until its
// standard input closes. Its arguments come one per line in
// helperEnv+"_ARGS". The NAT tests re-execute the test binary this way
// inside a network namespace (ip netns exec NS /proc/self/exe ...), which
// is simpler and surer than moving goroutines' threads between namespaces.
const helperEnv = "NATCHECK_TEST_HELPER"

func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	args := strings.Split(os.Getenv(helperEnv+"_ARGS"), "\n")
	switch mode {
	case "natcheck":
		os.Exit(Main(args, os.Stdout, os.Stderr))
	case "stunserver":
		// args: listen, alternate IP.
		s, err := stunserver.New(stunserver.Config{Listen: args[0], AlternateIP: args[1], Software: "natcheck helper"}, zap.NewNop())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = s.Close()
		os.Exit(0)
	default:
		fmt.Fprintf(os.Stderr, "unknown helper %q\n", mode)
		os.Exit(2)
	}
}
