package files_test

import (
	"context"
	"strings"
	"testing"

	"github.com/flmngr/flmngr/events"
)

// BenchmarkMaterializeTwoSmallFiles is what a client does before it
// starts a typical task (client.py and task.py).
func BenchmarkMaterializeTwoSmallFiles(b *testing.B) {
	ctx := context.Background()
	s := openB(b)
	var refs []events.FileRef
	for _, name := range []string{"client.py", "task.py"} {
		ref, err := s.Put(ctx, "t", name, strings.NewReader(strings.Repeat("x = 1\n", 300)))
		if err != nil {
			b.Fatal(err)
		}
		refs = append(refs, ref)
	}
	dir := b.TempDir()
	for b.Loop() {
		if err := s.Materialize(ctx, "t", refs, dir); err != nil {
			b.Fatal(err)
		}
	}
}
