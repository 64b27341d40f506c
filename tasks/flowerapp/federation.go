package flowerapp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Federation is the name of the federation flmngr declares in a Flower
// App's pyproject.toml to reach the task's SuperLink.
const Federation = "flmngr"

const federationMarker = "# --- written by flmngr: the task's SuperLink (do not edit below) ---\n"

// WriteFederation declares, at the end of the app's pyproject.toml, the
// federation that reaches the SuperLink's Control API at control over
// TLS, trusting the CA certificate in the file ca. What an earlier call
// wrote is replaced; a federation of that name the app declares itself
// is refused.
func WriteFederation(appDir, control, ca string) error {
	path := filepath.Join(appDir, "pyproject.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("the Flower App has no pyproject.toml: %w", err)
	}
	if i := bytes.Index(b, []byte(federationMarker)); i >= 0 {
		b = b[:i]
	}
	if bytes.Contains(b, []byte("[tool.flwr.federations."+Federation+"]")) {
		return fmt.Errorf("the Flower App's pyproject.toml declares a federation named %q, which flmngr reserves for the task's SuperLink", Federation)
	}
	if !bytes.Contains(b, []byte("[tool.flwr.app")) {
		return fmt.Errorf("pyproject.toml is not a Flower App's: it has no [tool.flwr.app] table")
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	b = append(b, federationMarker...)
	b = fmt.Appendf(b, "[tool.flwr.federations.%s]\naddress = %q\nroot-certificates = %q\n", Federation, control, ca)
	return os.WriteFile(path, b, 0o644)
}
