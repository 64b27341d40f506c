package viewstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const currentFile = "CURRENT"

func generationDir(dir string, gen int) string {
	return filepath.Join(dir, fmt.Sprintf("gen-%06d", gen))
}

// currentGeneration reads CURRENT, creating it for generation 1 in a new
// views directory.
func currentGeneration(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, currentFile))
	if errors.Is(err, os.ErrNotExist) {
		return 1, setCurrentGeneration(dir, 1)
	}
	if err != nil {
		return 0, fmt.Errorf("views: %w", err)
	}
	gen, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || gen < 1 {
		return 0, fmt.Errorf("views: %s holds %q, not a generation number", filepath.Join(dir, currentFile), b)
	}
	return gen, nil
}

// setCurrentGeneration switches CURRENT atomically (write, sync, rename).
func setCurrentGeneration(dir string, gen int) error {
	tmp := filepath.Join(dir, currentFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("views: %w", err)
	}
	_, werr := fmt.Fprintf(f, "%d\n", gen)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("views: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, currentFile)); err != nil {
		return fmt.Errorf("views: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// removeOtherGenerations deletes generation directories other than keep:
// old ones a crash left behind after a switch, and new ones of an
// interrupted rebuild.
func removeOtherGenerations(dir string, keep int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("views: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "gen-") || e.Name() == filepath.Base(generationDir(dir, keep)) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("views: remove stale %s: %w", e.Name(), err)
		}
	}
	return nil
}
